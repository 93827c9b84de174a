package io.quantcal.kernels.quant;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Quantization parameters of one tensor: per tensor ({@code axis = -1}, one scale) or per channel along
 * {@code axis} (one scale and zero point per channel). Real value = (q − zeroPoint) · scale with
 * q = clamp(round_half_even(x / scale) + zeroPoint, qmin, qmax): the ONNX QuantizeLinear rule.
 *
 * <p>Scales are kept exactly representable in float32, because that is how ONNX stores them and how
 * QuantizeLinear divides; computing with the double value would disagree with ONNX Runtime on ties.
 */
public record QuantParams(QuantGrid grid, boolean symmetric, int axis, double[] scale, int[] zeroPoint)
        implements Serializable {

    public QuantParams {
        if (scale.length == 0 || scale.length != zeroPoint.length) {
            throw new IllegalArgumentException("scale and zeroPoint must have the same non-zero length, got "
                    + scale.length + " and " + zeroPoint.length);
        }
        if (axis < 0 && scale.length != 1) {
            throw new IllegalArgumentException("per-tensor parameters (axis -1) need exactly one scale, got " + scale.length);
        }
        scale = scale.clone();
        zeroPoint = zeroPoint.clone();
        for (int c = 0; c < scale.length; c++) {
            double s = (float) scale[c];
            if (!(s > 0) || Double.isInfinite(s)) {
                throw new IllegalArgumentException("scale must be positive and finite in float32, channel " + c + ": " + scale[c]);
            }
            scale[c] = s;
            if (zeroPoint[c] < grid.qmin() || zeroPoint[c] > grid.qmax()) {
                throw new IllegalArgumentException("zero point " + zeroPoint[c] + " of channel " + c
                        + " outside the grid [" + grid.qmin() + ", " + grid.qmax() + "]");
            }
        }
    }

    public static QuantParams perTensor(QuantGrid grid, boolean symmetric, double scale, int zeroPoint) {
        return new QuantParams(grid, symmetric, -1, new double[] {scale}, new int[] {zeroPoint});
    }

    public boolean perChannel() {
        return axis >= 0;
    }

    public int channels() {
        return scale.length;
    }

    public int qmin() {
        return grid.qmin();
    }

    public int qmax() {
        return grid.qmax();
    }

    public double scale(int channel) {
        return scale[perChannel() ? channel : 0];
    }

    public int zeroPoint(int channel) {
        return zeroPoint[perChannel() ? channel : 0];
    }

    /** The smallest real value the grid represents for this channel: (qmin − Z)·s. */
    public double rangeMin(int channel) {
        return (grid.qmin() - zeroPoint(channel)) * scale(channel);
    }

    /** The largest real value the grid represents for this channel: (qmax − Z)·s. */
    public double rangeMax(int channel) {
        return (grid.qmax() - zeroPoint(channel)) * scale(channel);
    }

    /** The same grid with other scales (zero points kept): what scale searches produce. */
    public QuantParams withScales(double[] newScale) {
        return new QuantParams(grid, symmetric, axis, newScale, zeroPoint);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantParams p && grid.equals(p.grid) && symmetric == p.symmetric && axis == p.axis
                && Arrays.equals(scale, p.scale) && Arrays.equals(zeroPoint, p.zeroPoint);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * grid.hashCode() + Boolean.hashCode(symmetric)) + axis)
                + 17 * Arrays.hashCode(scale) + Arrays.hashCode(zeroPoint);
    }

    @Override
    public String toString() {
        return "QuantParams[bits=" + grid.bits() + ", signed=" + grid.signed() + ", symmetric=" + symmetric
                + ", axis=" + axis + ", q=[" + qmin() + "," + qmax() + "], scale=" + Arrays.toString(scale)
                + ", zeroPoint=" + Arrays.toString(zeroPoint) + "]";
    }
}
