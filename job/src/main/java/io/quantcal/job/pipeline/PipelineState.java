package io.quantcal.job.pipeline;

import io.quantcal.kernels.onnx.FoldedBatchNorm;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the passes hand on: the model as it is now (after folding, equalization...), its quantizable
 * nodes, the quantization chosen so far (keyed node/role, in node order), the QDQ model once built, and
 * the run summary's entries. Immutable: a pass returns a new state.
 */
public record PipelineState(
        String modelName,
        String modelSha256,
        OnnxModel model,
        List<FoldedBatchNorm> foldedBatchNorms,
        Map<String, TensorQuant> quant,
        OnnxModel qdqModel,
        Map<String, Object> summary,
        Map<String, io.quantcal.kernels.dfq.PreActivation> preActivations,
        OnnxModel reference,
        Map<String, int[]> integerWeights,
        InputMeans inputMeans) {

    /**
     * E[x] per channel of Conv inputs that calibrate gathered in its pass over the data for a later
     * {@code bias-correct} (null when it did not), with the hash of the FP model it ran: bias-correct uses them only
     * for that same model.
     */
    public record InputMeans(String modelSha256, Map<String, io.quantcal.kernels.dfq.ChannelMeans> byTensor) {
        public InputMeans {
            byTensor = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(byTensor));
        }
    }

    public static PipelineState initial(String modelName, OnnxModel model) {
        return initial(modelName, model.sha256(), model);
    }

    /** @param sha256 the model as given (before the front end folded constants), which names it in the table */
    public static PipelineState initial(String modelName, String sha256, OnnxModel model) {
        return new PipelineState(modelName, sha256, model, List.of(), Map.of(), null, Map.of(), Map.of(), model, Map.of(), null);
    }

    public List<QuantizableNode> nodes() {
        return model.quantizableNodes();
    }

    /** The nodes the per-layer search and DFQ passes take ({@link QuantizableNode#searchable}). */
    public List<QuantizableNode> searchableNodes() {
        Map<String, String> dynamic = io.quantcal.kernels.onnx.DataDependentShapes.of(model());
        return nodes().stream().filter(n -> n.searchable() && dataDependence(n, dynamic) == null).toList();
    }

    /**
     * "node (why)" of each quantized node those passes keep at its calibrated parameters ({@link QuantizableNode#whyNotSearchable},
     * or a layer whose input or output has a shape the data decide: its rows are not the samples' own)
     */
    public List<String> keptAsCalibrated() {
        Map<String, String> dynamic = io.quantcal.kernels.onnx.DataDependentShapes.of(model());
        List<String> out = new java.util.ArrayList<>();
        for (QuantizableNode n : nodes()) {
            String why = n.searchable() ? dataDependence(n, dynamic) : n.whyNotSearchable();
            if (why != null) out.add(n.name() + " (" + why + ")");
        }
        return out;
    }

    /**
     * Prints what per-layer pass {@code pass} leaves as calibrate made it, {@code how} ("at the calibrated parameters
     * (no layer search for this op)"), when it leaves anything: a layer a pass skips is named, never left out silently.
     */
    public void printKept(java.io.PrintStream out, String pass, String how) {
        List<String> kept = keptAsCalibrated();
        if (!kept.isEmpty()) out.printf("%s: keeps %s %s%n", pass, String.join(", ", kept), how);
    }

    private static String dataDependence(QuantizableNode n, Map<String, String> dynamic) {
        String cause = dynamic.containsKey(n.input()) ? dynamic.get(n.input()) : dynamic.get(n.output());
        return cause == null ? null : "its input's shape depends on the data (" + cause + "), so its rows are not the"
                + " samples' own";
    }

    public PipelineState withModel(OnnxModel m, List<FoldedBatchNorm> folded) {
        return new PipelineState(modelName, modelSha256, m, folded, quant, null, summary, preActivations, m,
                keptIntegerWeights(m, quant), inputMeans);
    }

    /**
     * A model whose FP32 function the quantized model should approximate but which is not itself the FP32
     * reference: bias correction changes biases for the quantized weights, so evaluation keeps comparing
     * against the model from before.
     */
    public PipelineState withCorrectedModel(OnnxModel m) {
        return new PipelineState(modelName, modelSha256, m, foldedBatchNorms, quant, null, summary, preActivations,
                reference, keptIntegerWeights(m, quant), inputMeans);
    }

    public PipelineState withQuant(Map<String, TensorQuant> q) {
        Map<String, TensorQuant> agreeing = agreeing(q);
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms,
                java.util.Collections.unmodifiableMap(agreeing), null, summary, preActivations,
                reference, keptIntegerWeights(model, agreeing), inputMeans);
    }

    /**
     * One tensor, one quantization: the QDQ model has one Q/DQ pair per activation tensor, so every activation row
     * of a tensor takes the parameters (and method) of its first row. Calibrate puts the quantizable nodes' own
     * input rows first, and a scale search replaces those rows in place, so a searched scale reaches the rows of
     * the tensor's other readers (an Add, a pooling op) and the table stays the model that is exported.
     */
    private static Map<String, TensorQuant> agreeing(Map<String, TensorQuant> q) {
        Map<String, TensorQuant> first = new LinkedHashMap<>();
        Map<String, TensorQuant> out = new LinkedHashMap<>();
        for (var e : q.entrySet()) {
            TensorQuant t = e.getValue();
            TensorQuant f = t.role().equals("activation") ? first.putIfAbsent(t.tensor(), t) : null;
            if (f != null && !sameParams(f.params(), t.params())) {
                t = new TensorQuant(t.tensor(), t.node(), t.opType(), t.role(), f.params(), f.method(), null, null, null);
            }
            out.put(e.getKey(), t);
        }
        return out;
    }

    private static boolean sameParams(QuantParams a, QuantParams b) {
        return a.grid().equals(b.grid()) && a.symmetric() == b.symmetric() && a.axis() == b.axis()
                && java.util.Arrays.equals(a.scale(), b.scale()) && java.util.Arrays.equals(a.zeroPoint(), b.zeroPoint());
    }

    /** With the Conv input means calibrate gathered for bias-correct. */
    public PipelineState withInputMeans(InputMeans m) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel, summary, preActivations,
                reference, integerWeights, m);
    }

    /** Pre-activation statistics (β, γ of folded BatchNorms) per Conv, as equalization left them. */
    public PipelineState withPreActivations(Map<String, io.quantcal.kernels.dfq.PreActivation> p) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel, summary, Map.copyOf(p),
                reference, integerWeights, inputMeans);
    }

    public PipelineState withQdq(OnnxModel qdq) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdq, summary, preActivations,
                reference, integerWeights, inputMeans);
    }

    public PipelineState withSummary(String key, Object value) {
        Map<String, Object> s = new LinkedHashMap<>(summary);
        s.put(key, value);
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel,
                java.util.Collections.unmodifiableMap(s), preActivations, reference, integerWeights, inputMeans);
    }

    /**
     * Precomputed integer weights (AdaRound codes, by weight tensor name) that the QDQ model uses instead of
     * rounding to nearest. The model's weights and the weight parameters must be the ones they were computed
     * for: see {@link #keptIntegerWeights}.
     */
    public PipelineState withIntegerWeights(Map<String, int[]> w) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel, summary, preActivations,
                reference, java.util.Collections.unmodifiableMap(new LinkedHashMap<>(w)), inputMeans);
    }

    /** Methods whose weight rows come with integer weights of their own (not the rounding to nearest of the table's scales). */
    public static final java.util.Set<String> INTEGER_WEIGHT_METHODS = java.util.Set.of("adaround", "lsq", "qil", "stochastic");

    /**
     * The codes still valid for model {@code m} and parameters {@code q}: a code stays while its weight row still
     * says a method of {@link #INTEGER_WEIGHT_METHODS} (adaround, lsq, ...) (a later scale search replaces the row) and the weight initializer is the same
     * (a pass that rewrites weights, e.g. equalize, invalidates it; bias-correct leaves it).
     */
    private Map<String, int[]> keptIntegerWeights(OnnxModel m, Map<String, TensorQuant> q) {
        if (integerWeights == null || integerWeights.isEmpty()) return Map.of();
        Map<String, int[]> kept = new LinkedHashMap<>();
        for (TensorQuant t : q.values()) {
            int[] codes = integerWeights.get(t.tensor());
            if (codes == null || !t.role().equals("weight") || !INTEGER_WEIGHT_METHODS.contains(t.method())) continue;
            if (m != model && !java.util.Arrays.equals(m.initializerFloats(t.tensor()), model.initializerFloats(t.tensor()))) continue;
            kept.put(t.tensor(), codes);
        }
        return java.util.Collections.unmodifiableMap(kept);
    }

    /** Activation parameters per activation tensor (shared by all its consumers). */
    public Map<String, QuantParams> activationParams() {
        Map<String, QuantParams> m = new LinkedHashMap<>();
        for (TensorQuant t : quant.values()) if (t.role().equals("activation")) m.putIfAbsent(t.tensor(), t.params());
        return m;
    }

    public Map<String, QuantParams> weightParams() {
        Map<String, QuantParams> m = new LinkedHashMap<>();
        for (TensorQuant t : quant.values()) if (t.role().equals("weight")) m.putIfAbsent(t.tensor(), t.params());
        return m;
    }

    public boolean calibrated() {
        return !quant.isEmpty();
    }
}
