package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.FoldedBatchNorm;
import java.io.Serializable;
import java.util.Arrays;

/**
 * The distribution DFQ assumes for a layer's pre-activation output channel i (Nagel et al. 2019, §4.2,
 * §4.3): xᵢ ~ N(βᵢ, γᵢ²), with β and γ the shift and scale of the BatchNorm folded into the layer.
 * Only |γᵢ| matters (a negative BN scale flips the sign of the normalized value, not its spread).
 *
 * @param beta  βᵢ, the mean
 * @param gamma γᵢ, the standard deviation up to sign
 */
public record PreActivation(float[] beta, float[] gamma) implements Serializable {

    public PreActivation {
        if (beta.length != gamma.length) {
            throw new IllegalArgumentException("beta has " + beta.length + " channels, gamma " + gamma.length);
        }
        beta = beta.clone();
        gamma = gamma.clone();
    }

    public static PreActivation of(FoldedBatchNorm bn) {
        return new PreActivation(bn.beta(), bn.gamma());
    }

    @Override
    public float[] beta() {
        return beta.clone();
    }

    @Override
    public float[] gamma() {
        return gamma.clone();
    }

    public int channels() {
        return beta.length;
    }

    /** After dividing the layer's output channel i by sᵢ (equalization): N(βᵢ/sᵢ, (γᵢ/sᵢ)²). */
    public PreActivation dividedBy(float[] s) {
        check(s);
        float[] b = new float[beta.length], g = new float[beta.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = beta[i] / s[i];
            g[i] = gamma[i] / s[i];
        }
        return new PreActivation(b, g);
    }

    /** After a per-channel affine map kᵢ·x + aᵢ folded into the layer: N(kᵢβᵢ + aᵢ, (kᵢγᵢ)²). */
    public PreActivation affine(float[] k, float[] a) {
        check(k);
        check(a);
        float[] b = new float[beta.length], g = new float[beta.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = k[i] * beta[i] + a[i];
            g[i] = k[i] * gamma[i];
        }
        return new PreActivation(b, g);
    }

    /** After subtracting cᵢ from the layer's bias (high-bias absorption): N(βᵢ − cᵢ, γᵢ²). */
    public PreActivation shiftedBy(float[] c) {
        check(c);
        float[] b = new float[beta.length];
        for (int i = 0; i < b.length; i++) b[i] = beta[i] - c[i];
        return new PreActivation(b, gamma);
    }

    private void check(float[] v) {
        if (v.length != beta.length) {
            throw new IllegalArgumentException(v.length + " values for " + beta.length + " channels");
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PreActivation p && Arrays.equals(beta, p.beta) && Arrays.equals(gamma, p.gamma);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(beta) + Arrays.hashCode(gamma);
    }

    @Override
    public String toString() {
        return "PreActivation[" + beta.length + " channels]";
    }
}
