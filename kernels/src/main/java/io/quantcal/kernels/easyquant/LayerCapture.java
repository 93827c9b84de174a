package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.calib.Batches;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * EasyQuant's capture step (parallel mode): run the FP network on a chunk of search samples and keep, for
 * every searched layer, its input X_l and FP output O_l as a {@link LayerProblem} — one problem per
 * (layer, chunk), what the candidate tasks evaluate.
 */
public final class LayerCapture {

    private LayerCapture() {}

    /**
     * A layer without its data: the tensors to capture and everything a {@link LayerProblem} needs beside them.
     *
     * @param inputTensor   the layer's input activation tensor
     * @param outputTensor  the tensor taken as O: the node's output, or its fused activation's output
     */
    public record Layer(String layer, String inputTensor, String outputTensor, boolean outputAfterActivation,
                        float[] w, long[] wShape, float[] bias, LayerOp op, QuantParams activation, QuantParams weight)
            implements Serializable {}

    /** The tensors a runner must capture for {@code layers}, each once, in first-use order. */
    public static List<String> tensors(List<Layer> layers) {
        List<String> t = new ArrayList<>();
        for (Layer l : layers) {
            if (!t.contains(l.inputTensor())) t.add(l.inputTensor());
            if (!t.contains(l.outputTensor())) t.add(l.outputTensor());
        }
        return t;
    }

    /**
     * @param runner      a runner capturing {@link #tensors}(layers)
     * @param sampleIds   the chunk's sample ids, strictly increasing, matching {@code samples}
     * @return one problem per layer, in the order of {@code layers}; empty when the chunk has no samples
     */
    public static List<LayerProblem> capture(ModelRunner runner, String inputName, long[] sampleShape, long[] sampleIds,
                                             List<float[]> samples, int batchSize, List<Layer> layers) {
        if (sampleIds.length != samples.size()) {
            throw new IllegalArgumentException("LayerCapture: " + sampleIds.length + " ids for " + samples.size() + " samples");
        }
        if (samples.isEmpty()) return List.of();
        List<String> tensors = tensors(layers);
        Map<String, List<FloatTensor>> parts = new LinkedHashMap<>();
        for (int b0 = 0; b0 < samples.size(); b0 += batchSize) {
            List<float[]> batch = samples.subList(b0, Math.min(samples.size(), b0 + batchSize));
            Map<String, FloatTensor> out = runner.run(Map.of(inputName, Batches.stack(inputName, batch, sampleShape)));
            for (String t : tensors) {
                FloatTensor v = out.get(t);
                if (v == null) throw new IllegalStateException("tensor " + t + " was not captured by the runner");
                parts.computeIfAbsent(t, k -> new ArrayList<>()).add(v);
            }
        }
        Map<String, FloatTensor> whole = new LinkedHashMap<>();
        for (var e : parts.entrySet()) whole.put(e.getKey(), FloatTensor.concat(e.getKey(), e.getValue()));
        List<LayerProblem> problems = new ArrayList<>(layers.size());
        for (Layer l : layers) {
            FloatTensor x = whole.get(l.inputTensor());
            FloatTensor o = whole.get(l.outputTensor());
            problems.add(new LayerProblem(l.layer(), sampleIds, x.data(), x.shape(), o.data(), o.shape(),
                    l.outputAfterActivation(), l.w(), l.wShape(), l.bias(), l.op(), l.activation(), l.weight()));
        }
        return problems;
    }
}
