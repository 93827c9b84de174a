package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Bias correction (Nagel et al. 2019, §4.3). Quantizing a layer's weight W to W̃ = W + ε shifts its
 * expected output: E[ỹ] − E[y] = ε·E[x] (eq. 15–16). Subtracting that from the bias (eq. 17) removes the
 * biased part of the error. Two ways to get it:
 * <ul>
 *   <li><b>empirical</b>: per output channel, the mean of the quantized model's layer output minus the
 *       FP model's, over data ({@link ChannelMeans} gathered wherever the data are);</li>
 *   <li><b>analytic</b> (data-free): E[x] from the preceding layer's BatchNorm statistics, xᵢ being a
 *       ReLU (or clip) of N(βᵢ, γᵢ²) ({@link ClippedNormal}), then ε·E[x] with ε summed over kernel
 *       positions (eq. 16 for a Conv whose input is the same in expectation at every position; as
 *       with high-bias absorption, outputs whose window overlaps zero padding see fewer taps).</li>
 * </ul>
 */
public final class BiasCorrection {

    private BiasCorrection() {}

    /**
     * The input tensor of each Conv among {@code nodes} with its channel count (weight shape[1] × group): the tensors
     * whose per-channel E[x] empirical bias correction reads, in node order.
     */
    public static Map<String, Integer> convInputChannels(java.util.List<QuantizableNode> nodes) {
        Map<String, Integer> m = new LinkedHashMap<>();
        for (QuantizableNode n : nodes) {
            if (n.kind().dataFree()) m.putIfAbsent(n.input(), ConvWeights.inputChannels(n.weightShape(), n.group()));
        }
        return m;
    }

    /** Empirical: b − (E[ỹ] − E[y]) per output channel, from the quantized and FP output means. */
    public static float[] empirical(float[] bias, ChannelMeans fp, ChannelMeans quantized) {
        double[] mf = fp.means(), mq = quantized.means();
        if (mf.length != bias.length || mq.length != bias.length) {
            throw new IllegalArgumentException("bias has " + bias.length + " channels, FP means " + mf.length
                    + ", quantized means " + mq.length);
        }
        double[] shift = new double[bias.length];
        for (int j = 0; j < shift.length; j++) shift[j] = mq[j] - mf[j];
        return corrected(bias, shift);
    }

    /** E[xᵢ] of a layer input xᵢ = clip(zᵢ, lo, hi), zᵢ ~ N(βᵢ, γᵢ²) (§4.3, appendix C). */
    public static double[] expectedInput(PreActivation z, double lo, double hi) {
        float[] beta = z.beta(), gamma = z.gamma();
        double[] e = new double[beta.length];
        for (int i = 0; i < e.length; i++) e[i] = ClippedNormal.mean(beta[i], gamma[i], lo, hi);
        return e;
    }

    /**
     * E[ỹⱼ] − E[yⱼ] = Σᵢ Σₖ (W̃ − W)ⱼᵢₖ · E[xᵢ] (eq. 16) for a Conv weight [C_out, C_in/group, k...].
     */
    public static double[] outputShift(float[] weight, float[] quantizedWeight, long[] weightShape, int group,
                                       double[] expectedInput) {
        if (weight.length != quantizedWeight.length) {
            throw new IllegalArgumentException("weight has " + weight.length + " values, quantized weight "
                    + quantizedWeight.length);
        }
        if (expectedInput.length != ConvWeights.inputChannels(weightShape, group)) {
            throw new IllegalArgumentException(expectedInput.length + " expected inputs for a layer with "
                    + ConvWeights.inputChannels(weightShape, group) + " input channels");
        }
        float[] eps = new float[weight.length];
        for (int i = 0; i < eps.length; i++) eps[i] = quantizedWeight[i] - weight[i];
        return ConvWeights.applyToConstant(eps, weightShape, group, expectedInput);
    }

    /** b − shift (eq. 17). */
    public static float[] corrected(float[] bias, double[] shift) {
        if (bias.length != shift.length) {
            throw new IllegalArgumentException("bias has " + bias.length + " channels, shift " + shift.length);
        }
        float[] b = new float[bias.length];
        for (int j = 0; j < b.length; j++) b[j] = (float) (bias[j] - shift[j]);
        return b;
    }

    /**
     * Analytic bias correction of every Conv in {@code quantizedWeights} whose input is the (activated)
     * output of a Conv with statistics in {@code preActivations}. Other layers are left out of the result
     * (their input's expectation is unknown without data).
     *
     * @param quantizedWeights per Conv name, the (fake-)quantized weight values, same shape as the weight
     * @param preActivations   per Conv name, the pre-activation statistics of its output (after
     *                         equalization and absorption, as those passes return them)
     * @return per Conv name, its corrected bias (a Conv without bias starts from 0)
     */
    public static Map<String, float[]> analytic(OnnxModel model, Map<String, float[]> quantizedWeights,
                                                Map<String, PreActivation> preActivations) {
        Map<String, QuantizableNode> byOutput = new HashMap<>();
        for (QuantizableNode q : model.quantizableNodes()) {
            if (q.kind().dataFree()) byOutput.put(q.finalOutput(), q);
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (QuantizableNode q : model.quantizableNodes()) {
            float[] wq = quantizedWeights.get(q.name());
            if (wq == null || !q.kind().dataFree()) continue;
            QuantizableNode prev = byOutput.get(q.input());
            PreActivation z = prev == null ? null : preActivations.get(prev.name());
            if (z == null) continue;
            // the input is clip(z, clipMin, clipMax): Relu [0, ∞), Clip [min, max], none (−∞, ∞)
            double[] ex = expectedInput(z, prev.clipMin(), prev.clipMax());
            double[] shift = outputShift(model.initializerFloats(q.weight()), wq, q.weightShape(), q.group(), ex);
            float[] bias = q.bias() == null ? new float[q.outputChannels()] : model.initializerFloats(q.bias());
            out.put(q.name(), corrected(bias, shift));
        }
        return out;
    }

    /** {@code model} with the given Conv biases (per node name); a Conv without one gets a new initializer. */
    public static OnnxModel withBiases(OnnxModel model, Map<String, float[]> biases) {
        ModelEdits e = new ModelEdits(model);
        for (var b : biases.entrySet()) e.bias(b.getKey(), b.getValue());
        return e.build();
    }
}
