package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.SampleInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * EasyQuant's capture step: run the network on a chunk of search samples and keep, for
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
     * @param w             the weight as {@code op} computes with it ({@link QuantizableNode#as2dWeight}), {@code weight}
     *                      its parameters ({@link QuantizableNode#as2dWeightParams})
     * @param node          the ONNX node, whose captured tensors are lifted to what {@code op} computes on
     *                      ({@link QuantizableNode#as2dInput}, {@link QuantizableNode#as2dOutput})
     */
    public record Layer(String layer, String inputTensor, String outputTensor, boolean outputAfterActivation,
                        float[] w, long[] wShape, float[] bias, LayerOp op, QuantParams activation, QuantParams weight,
                        QuantizableNode node)
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

    /** The layers' input tensors, each once, in first-use order. */
    public static List<String> inputTensors(List<Layer> layers) {
        List<String> t = new ArrayList<>();
        for (Layer l : layers) if (!t.contains(l.inputTensor())) t.add(l.inputTensor());
        return t;
    }

    /** The layers' output tensors (O), each once, in first-use order. */
    public static List<String> outputTensors(List<Layer> layers) {
        List<String> t = new ArrayList<>();
        for (Layer l : layers) if (!t.contains(l.outputTensor())) t.add(l.outputTensor());
        return t;
    }

    /**
     * @param fp          a runner of the FP network capturing the layers' outputs (and their inputs when
     *                    {@code inputs} is null): {@link #tensors}(layers)
     * @param inputs      null, or a runner of the network with the earlier layers quantized (sequential mode),
     *                    capturing {@link #inputTensors}(layers): X comes from it, O still from {@code fp}
     * @param sampleIds   the chunk's sample ids, strictly increasing, matching {@code samples}
     * @param positions   Conv layers keep at most this many output positions per sample ({@link OutputPositions}); 0 = all
     * @param seed        seeds the choice of positions (with the sample id)
     * @return one problem per layer, in the order of {@code layers}; empty when the chunk has no samples
     */
    public static List<LayerProblem> capture(ModelRunner fp, ModelRunner inputs, String inputName, long[] sampleShape,
                                             long[] sampleIds, List<float[]> samples, int batchSize, List<Layer> layers,
                                             int positions, long seed) {
        return capture(fp, inputs, ModelInputs.singleFloat(inputName, sampleShape), sampleIds,
                samples.stream().map(SampleInputs::of).toList(), batchSize, layers, positions, seed);
    }

    /**
     * {@link #capture(ModelRunner, ModelRunner, String, long[], long[], List, int, List, int, long)} for samples of any
     * model inputs ({@code modelInputs}: names, element types, shapes; batches of 1 when the model fixes its batch
     * dimension to 1).
     */
    public static List<LayerProblem> capture(ModelRunner fp, ModelRunner inputs, ModelInputs modelInputs,
                                             long[] sampleIds, List<SampleInputs> samples, int batchSize,
                                             List<Layer> layers, int positions, long seed) {
        if (sampleIds.length != samples.size()) {
            throw new IllegalArgumentException("LayerCapture: " + sampleIds.length + " ids for " + samples.size() + " samples");
        }
        if (samples.isEmpty()) return List.of();
        int batch = modelInputs.runBatch(batchSize);
        Map<String, FloatTensor> fromFp = run(fp, inputs == null ? tensors(layers) : outputTensors(layers), modelInputs,
                samples, batch);
        Map<String, FloatTensor> fromInputs = inputs == null ? fromFp
                : run(inputs, inputTensors(layers), modelInputs, samples, batch);
        List<LayerProblem> problems = new ArrayList<>(layers.size());
        for (Layer l : layers) {
            FloatTensor x = l.node().as2dInput(fromInputs.get(l.inputTensor()));
            FloatTensor o = l.node().as2dOutput(fromFp.get(l.outputTensor()));
            LayerProblem p = new LayerProblem(l.layer(), ids(sampleIds, x), x.data(), x.shape(), o.data(), o.shape(),
                    l.outputAfterActivation(), l.w(), l.wShape(), l.bias(), l.op(), l.activation(), l.weight());
            problems.add(positions > 0 ? OutputPositions.subsample(p, positions, seed ^ l.layer().hashCode()) : p);
        }
        return problems;
    }

    /**
     * The ids of the rows of {@code x}: the sample ids, or, when x is [k·N, D] (a sequence flattened into rows, as
     * torch's MultiheadAttention feeds its projection Gemms, sequence-first), one id per row: each row (token) is
     * scored on its own. Whether rows run sample-major or sequence-major is not in the tensor, so rows are not
     * assigned to samples. Row ids {@code first·k + r} never overlap another chunk's (chunks are consecutive ids).
     */
    static long[] ids(long[] sampleIds, FloatTensor x) {
        long n = sampleIds.length;
        if (x.rank() != 2 || x.dim(0) == n || n == 0 || x.dim(0) % n != 0) return sampleIds;
        long k = x.dim(0) / n;
        long[] rows = new long[(int) x.dim(0)];
        for (int r = 0; r < rows.length; r++) rows[r] = sampleIds[0] * k + r;
        return rows;
    }

    /** The tensors over all samples, batch by batch, each batch's samples moved to axis 0, concatenated along it. */
    private static Map<String, FloatTensor> run(ModelRunner runner, List<String> tensors, ModelInputs inputs,
                                                List<SampleInputs> samples, int batchSize) {
        Map<String, List<FloatTensor>> parts = new LinkedHashMap<>();
        for (int b0 = 0; b0 < samples.size(); b0 += batchSize) {
            List<SampleInputs> batch = samples.subList(b0, Math.min(samples.size(), b0 + batchSize));
            Map<String, FloatTensor> out = runner.runInputs(inputs.stack(batch));
            for (String t : tensors) {
                FloatTensor v = out.get(t);
                if (v == null) throw new IllegalStateException("tensor " + t + " was not captured by the runner");
                // a rank-2 tensor with a multiple of the batch as rows is a flattened sequence: rows stay as they are
                boolean rows = v.rank() == 2 && v.dim(0) != batch.size() && v.dim(0) % batch.size() == 0;
                parts.computeIfAbsent(t, k -> new ArrayList<>()).add(rows ? v : v.batchFirst(batch.size()));
            }
        }
        Map<String, FloatTensor> whole = new LinkedHashMap<>();
        for (var e : parts.entrySet()) whole.put(e.getKey(), FloatTensor.concat(e.getKey(), e.getValue()));
        return whole;
    }
}
