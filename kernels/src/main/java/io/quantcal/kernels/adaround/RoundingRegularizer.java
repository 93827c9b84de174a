package io.quantcal.kernels.adaround;

/**
 * AdaRound's rounding regularizer (Nagel et al. 2020, eq. 24): f_reg(V) = Σ_ij (1 − |2h(V_ij) − 1|^β). It is
 * 0 when every h is 0 or 1 and pushes h towards those ends; a large β is flat around h = 0.5 (lets the
 * reconstruction term decide), a small β pushes everywhere.
 */
public final class RoundingRegularizer {

    private RoundingRegularizer() {}

    /** One term of eq. 24: 1 − |2h(V) − 1|^β. */
    public static double term(double v, double beta) {
        return termOfH(RectifiedSigmoid.h(v), beta);
    }

    /** The term from h(V). */
    public static double termOfH(double h, double beta) {
        return 1 - Math.pow(Math.abs(2 * h - 1), beta);
    }

    /** f_reg(V), eq. 24, over all elements. */
    public static double value(double[] v, double beta) {
        double sum = 0;
        for (double x : v) sum += term(x, beta);
        return sum;
    }

    /**
     * d/dV of one term: −β |2h − 1|^(β−1) · sign(2h − 1) · 2 h'(V) (chain rule through eq. 23; 0 where h is
     * clipped, since h' = 0 there).
     */
    public static double derivative(double v, double beta) {
        return derivativeOf(RectifiedSigmoid.h(v), RectifiedSigmoid.derivative(v), beta);
    }

    /**
     * The term from h(V), returned, and its derivative from h(V) and h'(V) into {@code d[k]}, with one power: the
     * derivative is {@link #derivativeOf}'s bit for bit, the term |2h − 1|·|2h − 1|^(β−1) instead of |2h − 1|^β
     * (equal to within rounding; an iteration's loop over every weight calls this once per weight).
     */
    public static double termAndDerivative(double h, double dh, double beta, double[] d, int k) {
        double a = 2 * h - 1;
        double m = Math.abs(a);
        double p = Math.pow(m, beta - 1);
        d[k] = dh == 0 || a == 0 ? 0 : -beta * p * Math.signum(a) * 2 * dh;
        return 1 - m * p;
    }

    /** The derivative from h(V) and h'(V). */
    public static double derivativeOf(double h, double dh, double beta) {
        if (dh == 0) return 0;
        double a = 2 * h - 1;
        if (a == 0) return 0;
        return -beta * Math.pow(Math.abs(a), beta - 1) * Math.signum(a) * 2 * dh;
    }
}
