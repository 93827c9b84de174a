package io.quantcal.kernels.onnx;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * A BatchNormalization folded into the Conv before it, with the statistics it had: data-free
 * quantization (Nagel et al. 2019) reads γ and β back to estimate the pre-activation distribution for
 * high-bias absorption and bias correction.
 *
 * @param conv      the Conv node it was folded into
 * @param batchNorm the BatchNormalization node that was removed
 * @param gamma     scale γ per channel
 * @param beta      shift β per channel
 * @param mean      running mean per channel
 * @param var       running variance per channel
 * @param epsilon   the ε added to the variance
 */
public record FoldedBatchNorm(String conv, String batchNorm, float[] gamma, float[] beta, float[] mean,
                              float[] var, double epsilon) implements Serializable {

    public FoldedBatchNorm {
        Objects.requireNonNull(conv, "conv");
        Objects.requireNonNull(batchNorm, "batchNorm");
        int c = gamma.length;
        if (beta.length != c || mean.length != c || var.length != c) {
            throw new IllegalArgumentException("batch norm " + batchNorm + ": gamma, beta, mean, var lengths "
                    + c + ", " + beta.length + ", " + mean.length + ", " + var.length + " differ");
        }
        gamma = gamma.clone();
        beta = beta.clone();
        mean = mean.clone();
        var = var.clone();
    }

    @Override
    public float[] gamma() {
        return gamma.clone();
    }

    @Override
    public float[] beta() {
        return beta.clone();
    }

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] var() {
        return var.clone();
    }

    public int channels() {
        return gamma.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FoldedBatchNorm f && conv.equals(f.conv) && batchNorm.equals(f.batchNorm)
                && Arrays.equals(gamma, f.gamma) && Arrays.equals(beta, f.beta) && Arrays.equals(mean, f.mean)
                && Arrays.equals(var, f.var) && Double.compare(epsilon, f.epsilon) == 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(conv, batchNorm, Arrays.hashCode(gamma), Arrays.hashCode(beta), Arrays.hashCode(mean),
                Arrays.hashCode(var), epsilon);
    }

    @Override
    public String toString() {
        return "FoldedBatchNorm[" + batchNorm + " into " + conv + ", " + gamma.length + " channels, epsilon " + epsilon + "]";
    }
}
