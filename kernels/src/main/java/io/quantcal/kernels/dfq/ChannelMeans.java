package io.quantcal.kernels.dfq;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Per-channel sums of a layer output and how many values each channel summed: mergeable by addition,
 * so Spark partitions can each build one and the driver reduces them (merge in key order and the
 * result does not depend on the partitioning beyond floating-point summation order).
 *
 * @param sums  Σ of the values of channel c (axis 1 of an NCHW or [N, C] tensor), in double
 * @param count values per channel summed (N·H·W), the same for all channels
 */
public record ChannelMeans(double[] sums, long count) implements Serializable {

    public ChannelMeans {
        if (count < 0) throw new IllegalArgumentException("count must be >= 0, got " + count);
        sums = sums.clone();
    }

    public static ChannelMeans empty(int channels) {
        return new ChannelMeans(new double[channels], 0);
    }

    /** Sums over axis 1 of a row-major tensor of shape [N, C, ...] (NCHW, or [N, C] for Gemm outputs). */
    public static ChannelMeans of(float[] data, long[] shape) {
        if (shape.length < 2) {
            throw new IllegalArgumentException("expected a tensor [N, C, ...], got shape " + Arrays.toString(shape));
        }
        long n = 1;
        for (long d : shape) n *= d;
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n + " values, data has " + data.length);
        }
        int batch = (int) shape[0], c = (int) shape[1];
        int inner = 1;
        for (int d = 2; d < shape.length; d++) inner *= (int) shape[d];
        double[] sums = new double[c];
        for (int b = 0; b < batch; b++) {
            for (int ch = 0; ch < c; ch++) {
                int base = (b * c + ch) * inner;
                double s = 0;
                for (int k = 0; k < inner; k++) s += data[base + k];
                sums[ch] += s;
            }
        }
        return new ChannelMeans(sums, (long) batch * inner);
    }

    public int channels() {
        return sums.length;
    }

    @Override
    public double[] sums() {
        return sums.clone();
    }

    public ChannelMeans merge(ChannelMeans other) {
        if (other.sums.length != sums.length) {
            throw new IllegalArgumentException("cannot merge channel means of " + sums.length + " and "
                    + other.sums.length + " channels");
        }
        double[] s = sums.clone();
        for (int c = 0; c < s.length; c++) s[c] += other.sums[c];
        return new ChannelMeans(s, count + other.count);
    }

    /** Σ / count per channel. */
    public double[] means() {
        if (count == 0) throw new IllegalStateException("no values summed: the means are undefined");
        double[] m = new double[sums.length];
        for (int c = 0; c < m.length; c++) m[c] = sums[c] / count;
        return m;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChannelMeans m && count == m.count && Arrays.equals(sums, m.sums);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(sums) + Long.hashCode(count);
    }

    @Override
    public String toString() {
        return "ChannelMeans[" + sums.length + " channels, " + count + " values each]";
    }
}
