package io.quantcal.kernels.calib;

import io.quantcal.kernels.dfq.ChannelMeans;
import java.io.Serializable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * Σ over samples of each sample's per-channel sum of a tensor [N, C, ...] (axis 1): E[x] per input channel for
 * empirical bias correction, gathered in calibrate's own pass over the data.
 *
 * <p>Precision: each sample's channel sum is taken in double over its float32 values in index order, as
 * {@link ChannelMeans#of} does for one sample. The per-sample sums are then added <em>exactly</em> (an integer
 * multiple of a power of two, no rounding), and the total is rounded to double once, in {@link #toChannelMeans}. So the
 * result does not depend on which samples ONNX Runtime batched together, how Spark partitioned them or in which order
 * partials merge, without sorting samples by id. It equals the correctly rounded Σ of the per-sample double sums; a
 * left-to-right double sum of the same n per-sample sums (bias-correct's own scan) differs from it by at most
 * (n − 1)·2⁻⁵³·Σ|per-sample sum|.
 *
 * <p>(Not float32 sums inside the ONNX Runtime session: a ReduceSum's float32 result for one sample depends on the
 * sample's position in the batch, through the vectorized reduction's alignment, so it would change with the
 * partitioning.)
 */
public final class SampleChannelSums implements Serializable {

    private final String tensor;
    private final ExactSum[] sums;
    private long count;

    public SampleChannelSums(String tensor, int channels) {
        if (channels <= 0) throw new IllegalArgumentException("tensor " + tensor + ": channels must be > 0, got " + channels);
        this.tensor = tensor;
        this.sums = new ExactSum[channels];
        for (int c = 0; c < channels; c++) sums[c] = new ExactSum();
    }

    public String tensor() {
        return tensor;
    }

    public int channels() {
        return sums.length;
    }

    /** Values summed per channel so far (samples × the spatial size). */
    public long count() {
        return count;
    }

    /** Adds a batch of a tensor [N, C, ...] given as its row-major values and shape. */
    public void add(float[] data, long[] shape) {
        if (shape.length < 2) {
            throw new IllegalArgumentException("tensor " + tensor + ": expected [N, C, ...], got shape " + Arrays.toString(shape));
        }
        if (shape[1] != sums.length) {
            throw new IllegalArgumentException("tensor " + tensor + ": expected " + sums.length + " channels, got shape "
                    + Arrays.toString(shape));
        }
        add(FloatBuffer.wrap(data), (int) shape[0]);
    }

    /**
     * Adds a batch of {@code batch} samples of a tensor [N, C, ...] given as its row-major values (read from index 0 with
     * absolute gets: the buffer's position is left alone, another reader may share it).
     */
    public void add(FloatBuffer values, int batch) {
        int total = values.limit();
        if (batch <= 0 || total % ((long) batch * sums.length) != 0) {
            throw new IllegalArgumentException("tensor " + tensor + ": " + total + " values are not " + batch + " samples of "
                    + sums.length + " channels");
        }
        int c = sums.length;
        int inner = total / (batch * c);
        for (int b = 0; b < batch; b++) {
            for (int ch = 0; ch < c; ch++) {
                int base = (b * c + ch) * inner;
                double s = 0;
                for (int k = 0; k < inner; k++) s += values.get(base + k);
                if (!Double.isFinite(s)) {
                    throw new IllegalArgumentException("tensor " + tensor + ": channel " + ch + " of a sample sums to " + s
                            + "; E[x] for bias correction needs finite values");
                }
                sums[ch].add(s);
            }
        }
        count += (long) batch * inner;
    }

    /** This and {@code other} together (exact: any order of merging gives the same sums). */
    public SampleChannelSums merge(SampleChannelSums other) {
        if (other.sums.length != sums.length) {
            throw new IllegalArgumentException("tensor " + tensor + ": cannot merge sums of " + sums.length + " and "
                    + other.sums.length + " channels");
        }
        SampleChannelSums m = new SampleChannelSums(tensor, sums.length);
        for (int c = 0; c < sums.length; c++) {
            m.sums[c].add(sums[c]);
            m.sums[c].add(other.sums[c]);
        }
        m.count = count + other.count;
        return m;
    }

    /** The sums, each rounded to the nearest double once, with their count. */
    public ChannelMeans toChannelMeans() {
        double[] s = new double[sums.length];
        for (int c = 0; c < s.length; c++) s[c] = sums[c].doubleValue();
        return new ChannelMeans(s, count);
    }

    /** An exact sum of doubles: {@code units}·2^{@code exponent}, every addend an integer multiple of 2^exponent. */
    static final class ExactSum implements Serializable {
        private BigInteger units = BigInteger.ZERO;
        private int exponent = Integer.MAX_VALUE;

        void add(double v) {
            if (v == 0) return;
            long bits = Double.doubleToRawLongBits(v);
            int e = (int) ((bits >>> 52) & 0x7ff);
            long m = bits & ((1L << 52) - 1);
            if (e == 0) e = 1; // subnormal: no implicit bit
            else m |= 1L << 52;
            add(BigInteger.valueOf(v < 0 ? -m : m), e - 1075); // v = m·2^(e − 1075)
        }

        void add(ExactSum o) {
            if (o.exponent != Integer.MAX_VALUE) add(o.units, o.exponent);
        }

        private void add(BigInteger u, int exp) {
            if (exponent == Integer.MAX_VALUE) {
                units = u;
                exponent = exp;
            } else if (exp >= exponent) {
                units = units.add(u.shiftLeft(exp - exponent));
            } else {
                units = units.shiftLeft(exponent - exp).add(u);
                exponent = exp;
            }
        }

        /** units·2^exponent rounded to nearest (even) double, via an exact decimal: 2^−k = 5^k·10^−k. */
        double doubleValue() {
            if (exponent == Integer.MAX_VALUE || units.signum() == 0) return 0.0;
            BigDecimal exact = exponent >= 0 ? new BigDecimal(units.shiftLeft(exponent))
                    : new BigDecimal(units.multiply(BigInteger.valueOf(5).pow(-exponent)), -exponent);
            return exact.doubleValue();
        }
    }
}
