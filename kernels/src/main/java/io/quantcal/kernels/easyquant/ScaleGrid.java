package io.quantcal.kernels.easyquant;

import java.io.Serializable;

/**
 * EasyQuant's search space for one scale S (Wu et al. 2020, Sec. 3.2): the segmented interval [αS, βS]
 * split into n equal segments, both ends included, so n + 1 candidates S·(α + k(β − α)/n), k = 0..n.
 * Candidates are rounded to float32, as {@link io.quantcal.kernels.quant.QuantParams} stores scales.
 *
 * <p>With the defaults (α = 0.5, β = 2, n = 100) the step is 0.015·S and S itself is not a grid point
 * (k = 33.3); {@link AlternatingSearch} therefore always adds the current scale to the comparison.
 */
public record ScaleGrid(double initial, double alpha, double beta, int segments) implements Serializable {

    public static final double DEFAULT_ALPHA = 0.5;
    public static final double DEFAULT_BETA = 2.0;
    public static final int DEFAULT_SEGMENTS = 100;

    public ScaleGrid {
        if (!(initial > 0) || Double.isInfinite(initial)) {
            throw new IllegalArgumentException("ScaleGrid: initial scale must be positive and finite, got " + initial);
        }
        if (!(alpha > 0) || !(beta >= alpha) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("ScaleGrid: need 0 < alpha <= beta < inf, got alpha " + alpha + ", beta " + beta);
        }
        if (segments < 1) {
            throw new IllegalArgumentException("ScaleGrid: segments must be >= 1, got " + segments);
        }
    }

    /** The paper's defaults: [0.5·S, 2·S] in 100 segments. */
    public static ScaleGrid of(double initial) {
        return new ScaleGrid(initial, DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_SEGMENTS);
    }

    /** n + 1. */
    public int size() {
        return segments + 1;
    }

    /** Candidate k = (float) S·(α + k(β − α)/n); the ends are exactly (float) αS and (float) βS. */
    public double candidate(int k) {
        if (k < 0 || k > segments) {
            throw new IllegalArgumentException("ScaleGrid: candidate " + k + " outside [0, " + segments + "]");
        }
        double f = k == 0 ? alpha : k == segments ? beta : alpha + k * (beta - alpha) / segments;
        return (float) (initial * f);
    }

    /** All n + 1 candidates, increasing. */
    public double[] candidates() {
        double[] c = new double[size()];
        for (int k = 0; k <= segments; k++) c[k] = candidate(k);
        return c;
    }

    /** Index of the candidate nearest the initial scale (lower index on equal distance). */
    public int nearestToInitial() {
        int best = 0;
        for (int k = 1; k <= segments; k++) {
            if (Math.abs(candidate(k) - initial) < Math.abs(candidate(best) - initial)) best = k;
        }
        return best;
    }
}
