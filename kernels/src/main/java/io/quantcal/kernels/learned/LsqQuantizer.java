package io.quantcal.kernels.learned;

/**
 * The quantizer of LSQ (Esser et al. 2020, "Learned Step Size Quantization", eq. 1–3) on quantcal's grids, with its
 * straight-through gradients. With v = x/s and the grid's bounds relative to the zero point, −Q_N = qmin − Z and
 * Q_P = qmax − Z:
 * <pre>
 *   x̂ = round(clip(v, −Q_N, Q_P)) · s                                  (eq. 1–2)
 *   ∂x̂/∂s = −v + round(v)   if −Q_N &lt; v &lt; Q_P                          (eq. 3)
 *          = −Q_N           if v ≤ −Q_N
 *          = Q_P            if v ≥ Q_P
 *   ∂x̂/∂x = 1 inside the grid, 0 outside (the straight-through estimator of round, clip's own derivative)
 *   g = 1 / √(N · Q_P)                                                   (sec. 2.2, gradient scale)
 * </pre>
 * x/s is divided in float32 and rounded half to even, the ONNX QuantizeLinear rule, so that the codes this
 * quantizer trains with are the codes the exported model computes.
 */
public final class LsqQuantizer {

    private LsqQuantizer() {}

    /** v = x/s as QuantizeLinear divides (float32). */
    public static double ratio(double x, double s) {
        return (float) x / (float) s;
    }

    /** The integer code relative to the zero point, clamp(round(v), lo, hi), lo = qmin − Z, hi = qmax − Z. */
    public static double code(double v, int lo, int hi) {
        double r = Math.rint(v);
        return r < lo ? lo : r > hi ? hi : r;
    }

    /** x̂ = code(x/s)·s. */
    public static double value(double x, double s, int lo, int hi) {
        return code(ratio(x, s), lo, hi) * (float) s;
    }

    /** ∂x̂/∂s of eq. 3 (without the gradient scale). */
    public static double stepGradient(double x, double s, int lo, int hi) {
        double v = ratio(x, s);
        if (v <= lo) return lo;
        if (v >= hi) return hi;
        return Math.rint(v) - v;
    }

    /** True where the straight-through estimator passes ∂x̂/∂x = 1: −Q_N &lt; x/s &lt; Q_P. */
    public static boolean inside(double x, double s, int lo, int hi) {
        double v = ratio(x, s);
        return v > lo && v < hi;
    }

    /**
     * g = 1/√(N·Q_P) for a step that quantizes N values with Q_P positive levels (Q_P = the larger of |lo|, hi when
     * the grid holds no positive level, e.g. a zero point at qmax).
     */
    public static double gradientScale(long n, int lo, int hi) {
        int qp = hi > 0 ? hi : Math.max(1, -lo);
        return 1.0 / Math.sqrt((double) Math.max(1, n) * qp);
    }
}
