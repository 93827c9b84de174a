package io.quantcal.kernels.dfq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class BiasCorrectionClippedNormalTest {

    /** ∫ clip(z, lo, hi) φ((z − μ)/σ)/σ dz by composite Simpson over μ ± 12σ (2·10⁵ intervals). */
    static double integrate(double mu, double sigma, double lo, double hi) {
        int n = 200_000;
        double a = mu - 12 * sigma, b = mu + 12 * sigma, h = (b - a) / n, sum = 0;
        for (int i = 0; i <= n; i++) {
            double z = a + i * h;
            double f = Math.min(hi, Math.max(lo, z)) * Math.exp(-0.5 * Math.pow((z - mu) / sigma, 2))
                    / (sigma * Math.sqrt(2 * Math.PI));
            sum += f * (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2);
        }
        return sum * h / 3;
    }

    @Test
    void erfMatchesReferenceValuesWithinTheDocumentedBound() {
        // erf values from the series to 16 digits
        assertEquals(0.5204998778130465, ClippedNormal.erf(0.5), 1.5e-7);
        assertEquals(0.8427007929497149, ClippedNormal.erf(1.0), 1.5e-7);
        assertEquals(0.9953222650189527, ClippedNormal.erf(2.0), 1.5e-7);
        assertEquals(-0.8427007929497149, ClippedNormal.erf(-1.0), 1.5e-7);
        assertEquals(0.5, ClippedNormal.cdf(0.0), 1e-9);
    }

    @Test
    void reluAndRelu6MeansMatchNumericalIntegration() {
        double[][] cases = {{0, 1}, {1.5, 0.7}, {-2, 1.2}, {4, 3}, {0.3, 0.05}, {7, 2}, {-0.5, 4}};
        for (double[] c : cases) {
            double mu = c[0], sigma = c[1];
            assertEquals(integrate(mu, sigma, 0, Double.POSITIVE_INFINITY), ClippedNormal.reluMean(mu, sigma), 1e-6,
                    "ReLU of N(" + mu + ", " + sigma + "²)");
            // the closed form the paper writes for the ReLU
            double t = mu / sigma;
            assertEquals(sigma * ClippedNormal.density(t) + mu * ClippedNormal.cdf(t), ClippedNormal.reluMean(mu, sigma), 1e-12);
            assertEquals(integrate(mu, sigma, 0, 6), ClippedNormal.mean(mu, sigma, 0, 6), 1e-6,
                    "ReLU6 of N(" + mu + ", " + sigma + "²)");
        }
        assertEquals(0.0, ClippedNormal.mean(0.7, 1.0, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY) - 0.7, 1e-12);
    }
}
