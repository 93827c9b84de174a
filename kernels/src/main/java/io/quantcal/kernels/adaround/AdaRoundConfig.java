package io.quantcal.kernels.adaround;

import java.io.Serializable;

/**
 * The optimizer's settings. Defaults are the paper's and AIMET's: 10 000 iterations, Adam with learning
 * rate 1e-3, λ = 0.01, 20% warm-up, β from 20 to 2 (cosine, see {@link BetaSchedule}).
 *
 * @param batchColumns columns of X per iteration: "batch 32" of the paper is 32 samples' worth, so 32 for
 *                     Gemm/MatMul and 32·OH·OW (or 32 · sampled positions) for Conv; the caller decides
 * @param seed         seeds the column sampling: the same problem and config give the same result
 */
public record AdaRoundConfig(int iterations, double learningRate, double lambda, int batchColumns, double warmup,
                             double betaStart, double betaEnd, BetaSchedule.Decay decay, long seed)
        implements Serializable {

    public static final int DEFAULT_ITERATIONS = 10_000;
    public static final double DEFAULT_LEARNING_RATE = 1e-3;
    public static final double DEFAULT_LAMBDA = 0.01;
    /** Loss history stride: the result keeps the batch loss every this many iterations. */
    public static final int HISTORY_EVERY = 100;

    public AdaRoundConfig {
        if (iterations < 1) throw new IllegalArgumentException("adaround iterations must be >= 1, got " + iterations);
        if (!(learningRate > 0)) throw new IllegalArgumentException("adaround learning rate must be > 0, got " + learningRate);
        if (!(lambda >= 0)) throw new IllegalArgumentException("adaround lambda must be >= 0, got " + lambda);
        if (batchColumns < 1) throw new IllegalArgumentException("adaround batch columns must be >= 1, got " + batchColumns);
        new BetaSchedule(iterations, warmup, betaStart, betaEnd, decay); // validates the rest
    }

    /** The defaults with the given column batch. */
    public static AdaRoundConfig defaults(int batchColumns) {
        return new AdaRoundConfig(DEFAULT_ITERATIONS, DEFAULT_LEARNING_RATE, DEFAULT_LAMBDA, batchColumns, 0.2, 20, 2,
                BetaSchedule.Decay.COSINE, 0L);
    }

    public AdaRoundConfig withIterations(int n) {
        return new AdaRoundConfig(n, learningRate, lambda, batchColumns, warmup, betaStart, betaEnd, decay, seed);
    }

    public AdaRoundConfig withSeed(long s) {
        return new AdaRoundConfig(iterations, learningRate, lambda, batchColumns, warmup, betaStart, betaEnd, decay, s);
    }

    public AdaRoundConfig withLearningRate(double lr) {
        return new AdaRoundConfig(iterations, lr, lambda, batchColumns, warmup, betaStart, betaEnd, decay, seed);
    }

    public BetaSchedule schedule() {
        return new BetaSchedule(iterations, warmup, betaStart, betaEnd, decay);
    }
}
