package io.quantcal.kernels.dfq;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * Bias moved by high-bias absorption: cᵢ taken out of output channel i of {@code conv1}'s bias and
 * added, through {@code conv2}'s weights, to {@code conv2}'s bias.
 */
public record AbsorbedBias(String conv1, String conv2, float[] amounts) implements Serializable {

    public AbsorbedBias {
        Objects.requireNonNull(conv1, "conv1");
        Objects.requireNonNull(conv2, "conv2");
        amounts = amounts.clone();
    }

    @Override
    public float[] amounts() {
        return amounts.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AbsorbedBias a && conv1.equals(a.conv1) && conv2.equals(a.conv2)
                && Arrays.equals(amounts, a.amounts);
    }

    @Override
    public int hashCode() {
        return Objects.hash(conv1, conv2, Arrays.hashCode(amounts));
    }

    @Override
    public String toString() {
        return "AbsorbedBias[" + conv1 + " → " + conv2 + ", " + amounts.length + " channels]";
    }
}
