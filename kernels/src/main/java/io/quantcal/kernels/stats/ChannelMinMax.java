package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;
import java.util.Arrays;

/** Min and max of each channel of a weight along {@code axis}: what per-channel weight calibration starts from. */
public record ChannelMinMax(int axis, double[] min, double[] max) implements Serializable {

    public ChannelMinMax {
        if (axis < 0) throw new IllegalArgumentException("per-channel axis must be >= 0, got " + axis);
        if (min.length == 0 || min.length != max.length) {
            throw new IllegalArgumentException("need one min and one max per channel, got " + min.length + " and " + max.length);
        }
        min = min.clone();
        max = max.clone();
        for (int c = 0; c < min.length; c++) {
            if (!Double.isFinite(min[c]) || !Double.isFinite(max[c]) || !(min[c] <= max[c])) {
                throw new IllegalArgumentException("channel " + c + ": range must be finite with min <= max, got ["
                        + min[c] + ", " + max[c] + "]");
            }
        }
    }

    /** Per-channel min/max of {@code w} (row-major, {@code shape}) along {@code axis}. */
    public static ChannelMinMax of(float[] w, long[] shape, int axis) {
        return of(MinMaxStats.UNNAMED, w, shape, axis);
    }

    /**
     * Per-channel min/max of the weight {@code tensor} (row-major, {@code shape}) along {@code axis}.
     *
     * @throws IllegalArgumentException naming the tensor for a bad axis or shape, an empty channel or a NaN or
     *     infinite value
     */
    public static ChannelMinMax of(String tensor, float[] w, long[] shape, int axis) {
        if (axis < 0 || axis >= shape.length) {
            throw new IllegalArgumentException("tensor " + tensor + ": per-channel axis " + axis + " outside its shape "
                    + Arrays.toString(shape));
        }
        long elements = 1;
        for (long d : shape) elements *= d;
        if (elements != w.length) {
            throw new IllegalArgumentException("tensor " + tensor + ": shape " + Arrays.toString(shape) + " needs "
                    + elements + " values, got " + w.length);
        }
        if (w.length == 0) {
            throw new IllegalArgumentException("tensor " + tensor + ": no values in shape " + Arrays.toString(shape));
        }
        int channels = (int) shape[axis];
        long inner = 1;
        for (int d = axis + 1; d < shape.length; d++) inner *= shape[d];
        double[] min = new double[channels], max = new double[channels];
        Arrays.fill(min, Double.POSITIVE_INFINITY);
        Arrays.fill(max, Double.NEGATIVE_INFINITY);
        for (int i = 0; i < w.length; i++) {
            float v = w[i];
            if (!Float.isFinite(v)) throw MinMaxStats.nonFinite(tensor, v, i);
            int c = (int) ((i / inner) % channels);
            if (v < min[c]) min[c] = v;
            if (v > max[c]) max[c] = v;
        }
        return new ChannelMinMax(axis, min, max);
    }

    public int channels() {
        return min.length;
    }

    @Override
    public double[] min() {
        return min.clone();
    }

    @Override
    public double[] max() {
        return max.clone();
    }

    /** max(|min_c|, |max_c|) per channel: the symmetric clip of each channel. */
    public double[] absMax() {
        double[] a = new double[min.length];
        for (int c = 0; c < a.length; c++) a[c] = Math.max(Math.abs(min[c]), Math.abs(max[c]));
        return a;
    }

    /**
     * Per-channel parameters along {@code axis} covering each channel's range: symmetric s_c = c_c / qmax with
     * zero point 0, or affine AffineQuantizer.fromRanges.
     */
    public QuantParams toParams(QuantGrid grid, boolean symmetric) {
        if (!symmetric) return AffineQuantizer.fromRanges(grid, axis, min, max);
        double[] clips = absMax();
        double[] s = new double[clips.length];
        for (int c = 0; c < s.length; c++) s[c] = Range.symmetricStep(grid, clips[c]);
        return new QuantParams(grid, true, axis, s, new int[s.length]);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChannelMinMax m && axis == m.axis && Arrays.equals(min, m.min) && Arrays.equals(max, m.max);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * axis + Arrays.hashCode(min)) + Arrays.hashCode(max);
    }

    @Override
    public String toString() {
        return "ChannelMinMax[axis=" + axis + ", min=" + Arrays.toString(min) + ", max=" + Arrays.toString(max) + "]";
    }
}
