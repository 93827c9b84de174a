package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * High-bias absorption (Nagel et al. 2019, §4.2). Where Conv₁ → ReLU → Conv₂, and Conv₁'s pre-activation
 * channel i is N(βᵢ, γᵢ²), take cᵢ = max(0, βᵢ − 3γᵢ) (eq. 14: below cᵢ lies only ≈0.135% of the mass).
 * Whenever W₁x + b₁ ≥ c, ReLU(W₁x + b₁) = ReLU(W₁x + b₁ − c) + c, so with
 * b₁ → b₁ − c and b₂ → b₂ + W₂c (eq. 13) layer 2's output is unchanged.
 *
 * <p>For a Conv₂, W₂c is Σᵢ Σₖ W₂ⱼᵢₖ cᵢ over all kernel positions k: exact where the whole kernel window
 * lies inside the input, an approximation at outputs whose window overlaps zero padding (there the padded
 * inputs stay 0 instead of cᵢ, so those outputs gain the padded taps' share of W₂c). The paper accepts the
 * same approximation; Conv₂ without padding (pointwise 1×1, as in MobileNet blocks) is exact.
 *
 * <p>Only ReLU and Clip(0, +∞) pairs: for ReLU6 the shift would move the upper clip too. Layers without
 * an entry in the statistics map are left alone. |γᵢ| is used, as the spread of the pre-activation.
 */
public final class HighBiasAbsorber {

    private HighBiasAbsorber() {}

    /**
     * @param preActivations per Conv name, the pre-activation statistics of its output (β, γ of the
     *                       folded BatchNorm, rescaled by {@link EqualizationResult#rescale} after
     *                       equalization)
     */
    public static HighBiasAbsorption absorb(OnnxModel model, Map<String, PreActivation> preActivations) {
        ModelEdits edits = new ModelEdits(model);
        List<AbsorbedBias> absorbed = new ArrayList<>();
        Map<String, PreActivation> updated = new LinkedHashMap<>(preActivations);
        Map<String, double[]> biases = new LinkedHashMap<>();
        for (LayerPair p : LayerPair.find(model)) {
            if (!p.relu()) continue;
            QuantizableNode q1 = p.conv1(), q2 = p.conv2();
            PreActivation stats = preActivations.get(q1.name());
            if (stats == null) continue;
            if (stats.channels() != q1.outputChannels()) {
                throw new IllegalArgumentException(model.source() + ": pre-activation statistics for " + q1.name()
                        + " have " + stats.channels() + " channels, the layer has " + q1.outputChannels());
            }
            float[] beta = stats.beta(), gamma = stats.gamma();
            double[] c = new double[beta.length];
            boolean any = false;
            for (int i = 0; i < c.length; i++) {
                // eq. 14: cᵢ = max(0, βᵢ − 3γᵢ)
                c[i] = Math.max(0.0, (double) beta[i] - 3.0 * Math.abs((double) gamma[i]));
                any |= c[i] > 0;
            }
            if (!any) continue;
            double[] b1 = biases.computeIfAbsent(q1.name(), k -> bias(model, q1));
            double[] b2 = biases.computeIfAbsent(q2.name(), k -> bias(model, q2));
            for (int i = 0; i < c.length; i++) b1[i] -= c[i];
            double[] w2c = ConvWeights.applyToConstant(model.initializerFloats(q2.weight()), q2.weightShape(),
                    q2.group(), c);
            for (int j = 0; j < b2.length; j++) b2[j] += w2c[j];
            float[] cf = ConvWeights.toFloat(c);
            absorbed.add(new AbsorbedBias(q1.name(), q2.name(), cf));
            updated.put(q1.name(), stats.shiftedBy(cf));
        }
        for (var e : biases.entrySet()) edits.bias(e.getKey(), ConvWeights.toFloat(e.getValue()));
        return new HighBiasAbsorption(edits.build(), absorbed, updated);
    }

    private static double[] bias(OnnxModel model, QuantizableNode q) {
        return q.bias() == null ? new double[q.outputChannels()] : ConvWeights.toDouble(model.initializerFloats(q.bias()));
    }
}
