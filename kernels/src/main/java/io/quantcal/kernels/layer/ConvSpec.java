package io.quantcal.kernels.layer;

import java.io.Serializable;
import java.util.Arrays;

/**
 * The attributes of a 2-D ONNX Conv (NCHW): strides and dilations along (H, W), pads in ONNX order
 * [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right], and the group count
 * (1 = dense, C = depthwise).
 */
public record ConvSpec(long[] strides, long[] pads, long[] dilations, int group) implements Serializable {

    public ConvSpec {
        check("strides", strides, 2, 1);
        check("pads", pads, 4, 0);
        check("dilations", dilations, 2, 1);
        if (group < 1) {
            throw new IllegalArgumentException("ConvSpec: group must be >= 1, got " + group);
        }
        strides = strides.clone();
        pads = pads.clone();
        dilations = dilations.clone();
    }

    /** A copy: the spec stays immutable. */
    @Override
    public long[] strides() { return strides.clone(); }

    /** A copy, in ONNX order [top, left, bottom, right]. */
    @Override
    public long[] pads() { return pads.clone(); }

    /** A copy. */
    @Override
    public long[] dilations() { return dilations.clone(); }

    /** Stride 1, no padding, dilation 1, one group: the ONNX defaults. */
    public static ConvSpec defaults() {
        return new ConvSpec(new long[] {1, 1}, new long[] {0, 0, 0, 0}, new long[] {1, 1}, 1);
    }

    /** The same stride, pad (on all four sides) and dilation along H and W. */
    public static ConvSpec of(long stride, long pad, long dilation, int group) {
        return new ConvSpec(new long[] {stride, stride}, new long[] {pad, pad, pad, pad},
                new long[] {dilation, dilation}, group);
    }

    public long strideH() { return strides[0]; }
    public long strideW() { return strides[1]; }
    public long dilationH() { return dilations[0]; }
    public long dilationW() { return dilations[1]; }
    public long padTop() { return pads[0]; }
    public long padLeft() { return pads[1]; }
    public long padBottom() { return pads[2]; }
    public long padRight() { return pads[3]; }

    /** True when each spatial axis is padded equally at both ends (what ND4J's conv ops take). */
    public boolean symmetricPads() {
        return pads[0] == pads[2] && pads[1] == pads[3];
    }

    /**
     * Output height and width for an H×W input and a kh×kw kernel, the ONNX rule
     * out = floor((in + pad_begin + pad_end − dilation·(k − 1) − 1) / stride) + 1.
     */
    public long[] outputSize(long h, long w, long kh, long kw) {
        long oh = outputLength(h, kh, pads[0] + pads[2], strides[0], dilations[0]);
        long ow = outputLength(w, kw, pads[1] + pads[3], strides[1], dilations[1]);
        if (oh < 1 || ow < 1) {
            throw new IllegalArgumentException("Conv " + this + ": a " + kh + "x" + kw + " kernel does not fit a "
                    + h + "x" + w + " input (output " + oh + "x" + ow + ")");
        }
        return new long[] {oh, ow};
    }

    private static long outputLength(long in, long k, long padTotal, long stride, long dilation) {
        long span = in + padTotal - dilation * (k - 1) - 1;
        return span < 0 ? 0 : span / stride + 1;
    }

    private static void check(String name, long[] v, int length, long min) {
        if (v == null || v.length != length) {
            throw new IllegalArgumentException("ConvSpec: " + name + " must have " + length + " values, got "
                    + (v == null ? "null" : Arrays.toString(v)));
        }
        for (long x : v) {
            if (x < min) {
                throw new IllegalArgumentException("ConvSpec: " + name + " must be >= " + min + ", got " + Arrays.toString(v));
            }
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ConvSpec s && group == s.group && Arrays.equals(strides, s.strides)
                && Arrays.equals(pads, s.pads) && Arrays.equals(dilations, s.dilations);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * Arrays.hashCode(strides) + Arrays.hashCode(pads)) + Arrays.hashCode(dilations)) + group;
    }

    @Override
    public String toString() {
        return "ConvSpec[strides=" + Arrays.toString(strides) + ", pads=" + Arrays.toString(pads)
                + ", dilations=" + Arrays.toString(dilations) + ", group=" + group + "]";
    }
}
