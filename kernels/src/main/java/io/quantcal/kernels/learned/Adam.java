package io.quantcal.kernels.learned;

/**
 * Adam (Kingma &amp; Ba 2015, Algorithm 1) over one parameter vector, with PyTorch's defaults β₁ = 0.9,
 * β₂ = 0.999, ε = 1e-8 (as AdaRound's optimizer).
 */
final class Adam {

    /** LSQ's schedule (sec. 3): cosine learning-rate decay without restarts, 1 at step 0 to 0 after the last. */
    static double cosineDecay(int t, int iterations) {
        return 0.5 * (1 + Math.cos(Math.PI * t / iterations));
    }

    static final double BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;

    private final double[] m, v;
    private final double lr;
    private double b1t = 1, b2t = 1;

    Adam(int n, double lr) {
        this.m = new double[n];
        this.v = new double[n];
        this.lr = lr;
    }

    /** One step: x −= lr · decay · m̂ / (√v̂ + ε). */
    void step(double[] x, double[] grad, double decay) {
        b1t *= BETA1;
        b2t *= BETA2;
        double stepSize = lr * decay / (1 - b1t);
        double c2 = 1 / Math.sqrt(1 - b2t);
        for (int k = 0; k < x.length; k++) {
            double g = grad[k];
            m[k] = BETA1 * m[k] + (1 - BETA1) * g;
            v[k] = BETA2 * v[k] + (1 - BETA2) * g * g;
            x[k] -= stepSize * m[k] / (Math.sqrt(v[k]) * c2 + EPS);
        }
    }
}
