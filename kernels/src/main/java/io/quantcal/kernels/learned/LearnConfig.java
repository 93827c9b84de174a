package io.quantcal.kernels.learned;

import java.io.Serializable;

/**
 * Settings of one layer's learned quantizer.
 *
 * @param iterations         Adam steps
 * @param learningRate       Adam's learning rate for the step sizes, relative to each step's initial value: a step s
 *                           is learned as s₀·θ (θ₀ = 1), so a rate of 1e-3 moves s by about 0.1% of s₀ per iteration
 *                           whatever its magnitude (a PTQ deviation from the paper's SGD on s itself: one setting fits
 *                           weights of scale 1e-3 and activations of scale 1)
 * @param weightLearningRate Adam's rate for W when {@code updateWeights}, in units of the channel's initial step
 * @param updateWeights      also fine-tune W through the straight-through estimator (gradient only inside the grid)
 * @param batchColumns       columns of X per iteration
 * @param seed               seeds the column batches
 */
public record LearnConfig(int iterations, double learningRate, double weightLearningRate, boolean updateWeights,
                          int batchColumns, long seed) implements Serializable {

    /** Loss history stride: the result keeps the batch loss every this many iterations. */
    public static final int HISTORY_EVERY = 100;

    public LearnConfig {
        if (iterations < 1) throw new IllegalArgumentException("learn iterations must be >= 1, got " + iterations);
        if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
            throw new IllegalArgumentException("learn learning rate must be > 0, got " + learningRate);
        }
        if (!(weightLearningRate > 0) || Double.isInfinite(weightLearningRate)) {
            throw new IllegalArgumentException("learn weight learning rate must be > 0, got " + weightLearningRate);
        }
        if (batchColumns < 1) throw new IllegalArgumentException("learn batch columns must be >= 1, got " + batchColumns);
    }

    public LearnConfig withSeed(long s) {
        return new LearnConfig(iterations, learningRate, weightLearningRate, updateWeights, batchColumns, s);
    }
}
