package io.quantcal.kernels.quant;

/**
 * Affine (asymmetric) uniform quantization, the ONNX QuantizeLinear / DequantizeLinear rule:
 * q = clamp(round_half_even(x / s) + Z, qmin, qmax), x̂ = (q − Z)·s.
 *
 * <p>Division and rounding are done in float32, as ONNX Runtime does, so that results agree bit for bit
 * (ties like 0.5·s fall on the same side).
 */
public final class AffineQuantizer {

    private AffineQuantizer() {}

    public static int quantize(float x, float scale, int zeroPoint, int qmin, int qmax) {
        float r = (float) Math.rint(x / scale);
        // Saturate before converting: NaN maps to 0 (as rint(NaN)→NaN→(int) 0), ±inf and huge values clamp.
        float q = r + zeroPoint;
        if (q < qmin) return qmin;
        if (q > qmax) return qmax;
        return (int) q;
    }

    public static float dequantize(int q, float scale, int zeroPoint) {
        return (q - zeroPoint) * scale;
    }

    /**
     * Parameters whose grid covers [rmin, rmax], widened to include 0 so that 0 is exact
     * (scale = (rmax − rmin)/(qmax − qmin), zero point = round(qmin − rmin/scale), clamped to the grid).
     * A degenerate range (rmax = rmin = 0 after widening) gets scale 1, zero point 0, as ONNX Runtime does.
     */
    public static QuantParams fromRange(QuantGrid grid, double rmin, double rmax) {
        double[] sz = scaleAndZeroPoint(grid, rmin, rmax);
        return QuantParams.perTensor(grid, false, sz[0], (int) sz[1]);
    }

    /** Per-channel {@link #fromRange}: one range per channel along {@code axis}. */
    public static QuantParams fromRanges(QuantGrid grid, int axis, double[] rmin, double[] rmax) {
        if (rmin.length != rmax.length) {
            throw new IllegalArgumentException("per-channel ranges need as many minima as maxima, got "
                    + rmin.length + " and " + rmax.length);
        }
        double[] s = new double[rmin.length];
        int[] z = new int[rmin.length];
        for (int c = 0; c < rmin.length; c++) {
            double[] sz = scaleAndZeroPoint(grid, rmin[c], rmax[c]);
            s[c] = sz[0];
            z[c] = (int) sz[1];
        }
        return new QuantParams(grid, false, axis, s, z);
    }

    private static double[] scaleAndZeroPoint(QuantGrid grid, double rmin, double rmax) {
        checkRange(rmin, rmax);
        double lo = Math.min(rmin, 0.0);
        double hi = Math.max(rmax, 0.0);
        double scale = (float) ((hi - lo) / grid.levels());
        if (!(scale >= Float.MIN_NORMAL)) {
            return new double[] {1.0, 0};
        }
        double z = Math.rint(grid.qmin() - lo / scale);
        z = Math.max(grid.qmin(), Math.min(grid.qmax(), z));
        return new double[] {scale, z};
    }

    static void checkRange(double rmin, double rmax) {
        if (!Double.isFinite(rmin) || !Double.isFinite(rmax) || rmin > rmax) {
            throw new IllegalArgumentException("range must be finite with min <= max, got [" + rmin + ", " + rmax + "]");
        }
    }
}
