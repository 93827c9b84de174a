package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and
 * Bias Correction", §4.1). For consecutive layers y = f(W₂ f(W₁x + b₁) + b₂) with f positively
 * homogeneous (ReLU, identity), f(S⁻¹z) = S⁻¹f(z) for S = diag(s) > 0, so
 * W₁ → S⁻¹W₁, b₁ → S⁻¹b₁, W₂ → W₂S leaves the function unchanged. The paper's choice
 * sᵢ = √(r₁ᵢ r₂ᵢ) / r₂ᵢ (eq. 10 and the text after it) makes both channel ranges √(r₁ᵢ r₂ᵢ), which
 * maximizes Σᵢ (r̂₁ᵢ/R̂₁)(r̂₂ᵢ/R̂₂), the total per-channel precision under per-tensor quantization.
 *
 * <p>Chains of pairs (a layer that is layer 2 of one pair and layer 1 of the next) are equalized by
 * sweeping over all pairs until no scale moves by more than the tolerance (§4.1, "we iterate this process
 * for pairs of layers until convergence"). Weights are kept in double during the sweeps.
 *
 * <p>Channels where either range is 0 get sᵢ = 1 (nothing to balance, and the formula divides by it).
 */
public final class CrossLayerEqualizer {

    private CrossLayerEqualizer() {}

    /** Equalizes all pairs {@link LayerPair#find} finds, with {@code options}. */
    public static Equalized equalize(OnnxModel model, EqualizationOptions options) {
        List<LayerPair> pairs = new ArrayList<>();
        boolean relu6 = false;
        for (LayerPair p : LayerPair.find(model)) {
            if (p.activation() == null || p.relu()) {
                pairs.add(p);
            } else if (p.boundedRelu() && options.treatRelu6AsRelu()) {
                pairs.add(p);
                relu6 = true;
            }
        }
        Map<String, double[]> weights = new HashMap<>();
        Map<String, double[]> biases = new HashMap<>();
        for (LayerPair p : pairs) {
            for (QuantizableNode q : List.of(p.conv1(), p.conv2())) {
                weights.computeIfAbsent(q.name(), k -> ConvWeights.toDouble(model.initializerFloats(q.weight())));
                if (q.bias() != null) {
                    biases.computeIfAbsent(q.name(), k -> ConvWeights.toDouble(model.initializerFloats(q.bias())));
                }
            }
        }
        double[][] total = new double[pairs.size()][];
        for (int k = 0; k < pairs.size(); k++) {
            total[k] = new double[pairs.get(k).conv1().outputChannels()];
            Arrays.fill(total[k], 1.0);
        }
        int iterations = 0;
        boolean converged = pairs.isEmpty();
        while (!converged && iterations < options.maxIterations()) {
            iterations++;
            double maxChange = 0;
            for (int k = 0; k < pairs.size(); k++) {
                LayerPair p = pairs.get(k);
                double[] s = step(p, weights, biases);
                for (int i = 0; i < s.length; i++) {
                    total[k][i] *= s[i];
                    maxChange = Math.max(maxChange, Math.abs(s[i] - 1));
                }
            }
            converged = maxChange <= options.tolerance();
        }
        ModelEdits edits = new ModelEdits(model);
        Map<String, QuantizableNode> nodes = new HashMap<>();
        for (LayerPair p : pairs) {
            nodes.put(p.conv1().name(), p.conv1());
            nodes.put(p.conv2().name(), p.conv2());
        }
        for (var e : weights.entrySet()) edits.initializer(nodes.get(e.getKey()).weight(), ConvWeights.toFloat(e.getValue()));
        for (var e : biases.entrySet()) edits.initializer(nodes.get(e.getKey()).bias(), ConvWeights.toFloat(e.getValue()));
        List<PairScales> scales = new ArrayList<>();
        for (int k = 0; k < pairs.size(); k++) {
            LayerPair p = pairs.get(k);
            scales.add(new PairScales(p.conv1().name(), p.conv2().name(), p.activation(), ConvWeights.toFloat(total[k])));
        }
        return new Equalized(edits.build(), new EqualizationResult(scales, iterations, converged, relu6));
    }

    /** One equalization step of one pair on the working weights; returns the sᵢ applied. */
    private static double[] step(LayerPair p, Map<String, double[]> weights, Map<String, double[]> biases) {
        QuantizableNode q1 = p.conv1(), q2 = p.conv2();
        double[] w1 = weights.get(q1.name());
        double[] w2 = weights.get(q2.name());
        double[] r1 = ConvWeights.outputChannelRanges(w1, q1.weightShape(), q1.group());
        double[] r2 = ConvWeights.inputChannelRanges(w2, q2.weightShape(), q2.group());
        double[] s = new double[r1.length];
        double[] inv = new double[r1.length];
        for (int i = 0; i < s.length; i++) {
            // §4.1: sᵢ = (1/r₂ᵢ)·√(r₁ᵢ r₂ᵢ), so that r₁ᵢ/sᵢ = r₂ᵢ·sᵢ = √(r₁ᵢ r₂ᵢ)
            s[i] = r1[i] > 0 && r2[i] > 0 ? Math.sqrt(r1[i] * r2[i]) / r2[i] : 1.0;
            inv[i] = 1.0 / s[i];
        }
        ConvWeights.scaleOutputChannels(w1, q1.weightShape(), q1.group(), inv);
        double[] b1 = biases.get(q1.name());
        if (b1 != null) for (int i = 0; i < b1.length; i++) b1[i] *= inv[i];
        ConvWeights.scaleInputChannels(w2, q2.weightShape(), q2.group(), s);
        return s;
    }
}
