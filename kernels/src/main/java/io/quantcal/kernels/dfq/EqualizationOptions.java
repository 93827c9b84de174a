package io.quantcal.kernels.dfq;

import java.io.Serializable;

/**
 * How {@link CrossLayerEqualizer} runs.
 *
 * @param maxIterations    sweeps over all pairs at most
 * @param tolerance        stop once no sweep scale differs from 1 by more than this (max |sᵢ − 1|)
 * @param treatRelu6AsRelu equalize across Clip(0, c) too, as the paper does for ReLU6 (§4.1 / §5.1):
 *                         ReLU6 is not positively homogeneous, so this changes the FP function where
 *                         pre-activations exceed c; false leaves such pairs alone (function-preserving)
 */
public record EqualizationOptions(int maxIterations, double tolerance, boolean treatRelu6AsRelu)
        implements Serializable {

    public EqualizationOptions {
        if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
        if (!(tolerance >= 0)) throw new IllegalArgumentException("tolerance must be >= 0, got " + tolerance);
    }

    /** 100 sweeps, tolerance 1e-6, ReLU6 treated as ReLU (the paper's setting). */
    public static EqualizationOptions defaults() {
        return new EqualizationOptions(100, 1e-6, true);
    }

    public EqualizationOptions withTreatRelu6AsRelu(boolean b) {
        return new EqualizationOptions(maxIterations, tolerance, b);
    }

    public EqualizationOptions withMaxIterations(int n) {
        return new EqualizationOptions(n, tolerance, treatRelu6AsRelu);
    }
}
