package io.quantcal.kernels.adaround;

/**
 * The rectified sigmoid of AdaRound (Nagel et al. 2020, eq. 23, after Louizos et al. 2018):
 * h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1) with ζ = 1.1, γ = −0.1. The stretch past [0, 1] lets h reach exactly 0
 * and 1 at finite V, where its gradient vanishes.
 */
public final class RectifiedSigmoid {

    public static final double ZETA = 1.1;
    public static final double GAMMA = -0.1;

    /**
     * How far {@link #inverse} keeps h from 0 and 1. h = 0 and h = 1 have finite preimages (σ = 1/12 and
     * 11/12), but they sit on the clip's kink, where h' = 0: a weight whose W/s is an exact integer would
     * never move. Just inside, it starts with a (tiny) gradient.
     */
    public static final double INVERSE_MARGIN = 1e-4;

    private RectifiedSigmoid() {}

    /** h(V), eq. 23. */
    public static double h(double v) {
        return hOfSigmoid(sigmoid(v));
    }

    /** h from σ(V) (an iteration's loop computes σ once per weight, then h and h' from it). */
    public static double hOfSigmoid(double s) {
        double u = s * (ZETA - GAMMA) + GAMMA;
        return u <= 0 ? 0 : u >= 1 ? 1 : u;
    }

    /** dh/dV = σ(V)(1 − σ(V))(ζ − γ) where the clip is inactive (0 < u < 1), else 0. */
    public static double derivative(double v) {
        return derivativeOfSigmoid(sigmoid(v));
    }

    /** dh/dV from σ(V). */
    public static double derivativeOfSigmoid(double s) {
        double u = s * (ZETA - GAMMA) + GAMMA;
        return u > 0 && u < 1 ? s * (1 - s) * (ZETA - GAMMA) : 0;
    }

    /**
     * The V with h(V) = {@code target}, {@code target} first clamped to [margin, 1 − margin]: AdaRound's
     * initialisation h(V₀) = W/s − ⌊W/s⌋ (as AIMET initialises its alpha), so that the soft-quantized
     * weight starts at the floating-point weight. σ(V) = (h − γ)/(ζ − γ), V = log(σ / (1 − σ)).
     */
    public static double inverse(double target) {
        double h = Math.max(INVERSE_MARGIN, Math.min(1 - INVERSE_MARGIN, target));
        double s = (h - GAMMA) / (ZETA - GAMMA);
        return Math.log(s / (1 - s));
    }

    /** σ(v), without overflow for large |v|. */
    public static double sigmoid(double v) {
        if (v >= 0) return 1 / (1 + Math.exp(-v));
        double e = Math.exp(v);
        return e / (1 + e);
    }
}
