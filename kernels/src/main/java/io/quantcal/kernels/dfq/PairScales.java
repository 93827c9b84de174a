package io.quantcal.kernels.dfq;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * The equalization scales of one layer pair (Nagel et al. 2019, §4.1): output channel i of {@code conv1}
 * was divided by sᵢ and input channel i of {@code conv2} multiplied by sᵢ; over several sweeps, sᵢ is the
 * product of the per-sweep scales.
 *
 * @param conv1      the layer whose output channels were scaled by 1/sᵢ
 * @param conv2      the layer whose input channels were scaled by sᵢ
 * @param activation what sits between them: "Relu", "Clip" (ReLU6, treated as ReLU) or null (identity)
 * @param scales     sᵢ per channel
 */
public record PairScales(String conv1, String conv2, String activation, float[] scales) implements Serializable {

    public PairScales {
        Objects.requireNonNull(conv1, "conv1");
        Objects.requireNonNull(conv2, "conv2");
        scales = scales.clone();
    }

    @Override
    public float[] scales() {
        return scales.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PairScales p && conv1.equals(p.conv1) && conv2.equals(p.conv2)
                && Objects.equals(activation, p.activation) && Arrays.equals(scales, p.scales);
    }

    @Override
    public int hashCode() {
        return Objects.hash(conv1, conv2, activation, Arrays.hashCode(scales));
    }

    @Override
    public String toString() {
        return "PairScales[" + conv1 + " → " + (activation != null ? activation + " → " : "") + conv2 + ", "
                + scales.length + " channels]";
    }
}
