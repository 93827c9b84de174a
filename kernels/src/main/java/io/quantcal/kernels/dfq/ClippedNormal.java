package io.quantcal.kernels.dfq;

/**
 * The mean of a normal variable clipped to [a, b]: what a ReLU (a = 0, b = ∞) or ReLU6 (a = 0, b = 6)
 * outputs, on average, when its input is N(μ, σ²) (Nagel et al. 2019, §4.3 and appendix C). With
 * α = (a − μ)/σ and β = (b − μ)/σ,
 * <pre>
 *   E[clip(z, a, b)] = a·Φ(α) + b·(1 − Φ(β)) + μ·(Φ(β) − Φ(α)) + σ·(φ(α) − φ(β))
 * </pre>
 * which for the ReLU is σ·φ(μ/σ) + μ·Φ(μ/σ).
 *
 * <p>Φ comes from erf by Abramowitz and Stegun 7.1.26: |error of erf| ≤ 1.5·10⁻⁷ for all x, so
 * |error of Φ| ≤ 7.5·10⁻⁸ and the mean is off by at most ≈ 7.5·10⁻⁸·(|a| + |b| + 2|μ|) where the bounds
 * are finite (the φ terms are exact). That is far below the float32 resolution of the biases it corrects.
 */
public final class ClippedNormal {

    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2 * Math.PI);

    private ClippedNormal() {}

    /** Standard normal density φ(x). */
    public static double density(double x) {
        return Double.isInfinite(x) ? 0.0 : INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    }

    /** Standard normal distribution function Φ(x) = (1 + erf(x/√2)) / 2. */
    public static double cdf(double x) {
        if (x == Double.POSITIVE_INFINITY) return 1.0;
        if (x == Double.NEGATIVE_INFINITY) return 0.0;
        return 0.5 * (1.0 + erf(x / Math.sqrt(2.0)));
    }

    /** erf by Abramowitz and Stegun 7.1.26, |ε| ≤ 1.5·10⁻⁷. */
    public static double erf(double x) {
        double ax = Math.abs(x);
        double t = 1.0 / (1.0 + 0.3275911 * ax);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double y = 1.0 - poly * Math.exp(-ax * ax);
        return x < 0 ? -y : y;
    }

    /** E[clip(z, lo, hi)] for z ~ N(mu, sigma²); lo may be −∞ and hi +∞; sigma = 0 clips mu itself. */
    public static double mean(double mu, double sigma, double lo, double hi) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clip bounds [" + lo + ", " + hi + "] are empty");
        sigma = Math.abs(sigma);
        if (sigma == 0) return Math.min(hi, Math.max(lo, mu));
        double alpha = (lo - mu) / sigma;
        double beta = (hi - mu) / sigma;
        double pa = cdf(alpha), pb = cdf(beta);
        double m = mu * (pb - pa) + sigma * (density(alpha) - density(beta));
        if (lo != Double.NEGATIVE_INFINITY) m += lo * pa;
        if (hi != Double.POSITIVE_INFINITY) m += hi * (1.0 - pb);
        return m;
    }

    /** E[ReLU(z)] = σ·φ(μ/σ) + μ·Φ(μ/σ) for z ~ N(mu, sigma²). */
    public static double reluMean(double mu, double sigma) {
        return mean(mu, sigma, 0.0, Double.POSITIVE_INFINITY);
    }
}
