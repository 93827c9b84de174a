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
        forEachChannelRun(x.length, shape, p, (from, to, c) -> {
            float s = (float) p.scale(c);
            int z = p.zeroPoint(c);
            int lo = p.qmin(), hi = p.qmax();
            for (int i = from; i < to; i++) {
                y[i] = AffineQuantizer.dequantize(AffineQuantizer.quantize(x[i], s, z, lo, hi), s, z);
            }
        });
        return y;
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
