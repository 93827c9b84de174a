package io.quantcal.kernels.quant;

import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Quantize then dequantize (x → x̂ = (q − Z)·s) with the ONNX rounding rule, per tensor or per channel.
 * Works on row-major float arrays with an explicit shape, and on ND4J arrays.
 */
public final class FakeQuant {

    private FakeQuant() {}

    /** Integer codes of {@code x} (row-major, {@code shape}) under {@code p}. */
    public static int[] quantize(float[] x, long[] shape, QuantParams p) {
        int[] q = new int[x.length];
        forEachChannelRun(x.length, shape, p, (from, to, c) -> {
            float s = (float) p.scale(c);
            int z = p.zeroPoint(c);
            for (int i = from; i < to; i++) q[i] = AffineQuantizer.quantize(x[i], s, z, p.qmin(), p.qmax());
        });
        return q;
    }

    /** Real values of integer codes (row-major, {@code shape}) under {@code p}. */
    public static float[] dequantize(int[] q, long[] shape, QuantParams p) {
        float[] y = new float[q.length];
        forEachChannelRun(q.length, shape, p, (from, to, c) -> {
            float s = (float) p.scale(c);
            int z = p.zeroPoint(c);
            for (int i = from; i < to; i++) y[i] = AffineQuantizer.dequantize(q[i], s, z);
        });
        return y;
    }

    /** x̂ for every element of {@code x} (row-major, {@code shape}). */
    public static float[] apply(float[] x, long[] shape, QuantParams p) {
        float[] y = new float[x.length];
        applyInto(x, shape, p, y, 0);
        return y;
    }

    /**
     * {@link #apply(float[], long[], QuantParams)} written into {@code dst} from {@code at} on (no allocation: search
     * loops fake-quantize one candidate after another into the same buffer). A per-channel axis that is the last one
     * (a MatMul weight [K, M], axis 1) runs as one loop over rows and channels, not one run per element.
     */
    public static void applyInto(float[] x, long[] shape, QuantParams p, float[] dst, int at) {
        if (dst.length - at < x.length) {
            throw new IllegalArgumentException("fake-quant destination has " + (dst.length - at) + " floats from " + at
                    + ", needs " + x.length);
        }
        int lo = p.qmin(), hi = p.qmax();
        if (p.perChannel() && p.axis() == shape.length - 1 && p.axis() > 0) {
            int channels = p.channels();
            if (shape[p.axis()] != channels || x.length % channels != 0) {
                forEachChannelRun(x.length, shape, p, (from, to, c) -> { }); // throws the shape error
            }
            float[] s = new float[channels], cl = new float[channels], ch = new float[channels], nan = new float[channels];
            for (int c = 0; c < channels; c++) {
                s[c] = (float) p.scale(c);
                int z = p.zeroPoint(c);
                cl[c] = lo - z;
                ch[c] = hi - z;
                nan[c] = (float) (0 - z) * s[c];
            }
            // row by row through a row buffer that every load and store indexes by the channel alone: the JIT then
            // vectorizes across the channels (indexed dst[row + c] beside s[c], it does not: see fakeQuantizeRun)
            float[] r = new float[channels];
            for (int row = 0; row < x.length; row += channels) {
                System.arraycopy(x, row, r, 0, channels);
                for (int c = 0; c < channels; c++) r[c] = grid(r[c], s[c], cl[c], ch[c]);
                System.arraycopy(r, 0, dst, at + row, channels);
            }
            for (int i = 0; i < x.length; i++) if (x[i] != x[i]) dst[at + i] = nan[i % channels];
            return;
        }
        forEachChannelRun(x.length, shape, p, (from, to, c) -> fakeQuantizeRun(x, from, to, (float) p.scale(c), p.zeroPoint(c),
                lo, hi, dst, at));
    }

    /** 1.5·2²³: for |v| ≤ 2²², (v + ROUND) − ROUND is v rounded half to even, in float, without a branch. */
    private static final float ROUND = 0x1.8p23f;

    /**
     * x̂ of x[from, to) into dst[at + from, at + to) with one step and zero point: {@link AffineQuantizer#quantize}
     * then {@link AffineQuantizer#dequantize}, bit for bit, written without branches and in float so that the JIT
     * vectorizes it (the branchy per-element form cost 11 ns per value where the clamps mispredict; clamped in int,
     * 1.15 ns, as the JIT does not vectorize int min/max; clamped in float, 0.4 ns with the NaN pass). The quotient x/s
     * is rounded half to even by adding and subtracting 1.5·2²³, exact for |x/s| ≤ 2²²; beyond that the rounding may
     * be off, but the code clamps to the grid (at most 16 bits) either way, ±∞ included. The code relative to the zero
     * point is clamped to [qmin − z, qmax − z] in float (exact: whole numbers below 2²⁴); it is never −0, since
     * (v + R) − R of equal terms is +0. NaN, which the float clamp keeps, gets code 0 as {@link AffineQuantizer#quantize}
     * gives it, in a second pass.
     */
    static void fakeQuantizeRun(float[] x, int from, int to, float s, int z, int qmin, int qmax, float[] dst, int at) {
        float lo = qmin - z, hi = qmax - z;
        // copied first, then rewritten in place: a loop that reads x[i] and writes dst[at + i] is not vectorized
        // (for all the JIT knows, dst is x and a store feeds a later load), one that reads and writes dst[i] is
        System.arraycopy(x, from, dst, at + from, to - from);
        for (int i = at + from, end = at + to; i < end; i++) dst[i] = grid(dst[i], s, lo, hi);
        float nan = (float) (0 - z) * s;
        for (int i = from; i < to; i++) if (x[i] != x[i]) dst[at + i] = nan;
    }

    /** x/s rounded half to even, clamped to [lo, hi] (codes relative to the zero point), times s; NaN stays NaN. */
    private static float grid(float x, float s, float lo, float hi) {
        return Math.min(Math.max((x / s + ROUND) - ROUND, lo), hi) * s;
    }

    /** x̂ of an ND4J array, as a new float32 array of the same shape (c order). */
    public static INDArray apply(INDArray x, QuantParams p) {
        long[] shape = x.shape();
        float[] data = x.dup('c').castTo(DataType.FLOAT).data().asFloat();
        return Nd4j.create(apply(data, shape, p), shape, 'c');
    }

    interface ChannelRun {
        void run(int from, int to, int channel);
    }

    /**
     * Visits contiguous runs of a row-major tensor that share one channel index along p's axis
     * (the whole tensor once when p is per tensor), in increasing index order: callers that draw one random
     * number per element (StochasticQuantizer) rely on that order.
     */
    static void forEachChannelRun(int length, long[] shape, QuantParams p, ChannelRun f) {
        if (!p.perChannel()) {
            f.run(0, length, 0);
            return;
        }
        int axis = p.axis();
        if (axis >= shape.length) {
            throw new IllegalArgumentException("per-channel axis " + axis + " outside a tensor of rank " + shape.length);
        }
        if (shape[axis] != p.channels()) {
            throw new IllegalArgumentException("per-channel axis " + axis + " has " + shape[axis]
                    + " channels but the parameters have " + p.channels());
        }
        long elements = 1;
        for (long d : shape) elements *= d;
        if (elements != length) {
            throw new IllegalArgumentException("tensor of shape " + Arrays.toString(shape) + " needs "
                    + elements + " values, got " + length);
        }
        long inner = 1;
        for (int d = axis + 1; d < shape.length; d++) inner *= shape[d];
        int run = (int) inner;
        int channels = p.channels();
        for (int start = 0, k = 0; start < length; start += run, k++) {
            f.run(start, start + run, k % channels);
        }
    }
}
