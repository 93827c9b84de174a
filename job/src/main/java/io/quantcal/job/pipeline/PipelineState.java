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
        OnnxModel reference) {

    public static PipelineState initial(String modelName, OnnxModel model) {
        return new PipelineState(modelName, model.sha256(), model, List.of(), Map.of(), null, Map.of(), Map.of(), model);
    }

    public List<QuantizableNode> nodes() {
        return model.quantizableNodes();
    }

    public PipelineState withModel(OnnxModel m, List<FoldedBatchNorm> folded) {
        return new PipelineState(modelName, modelSha256, m, folded, quant, null, summary, preActivations, m);
    }

    /**
     * A model whose FP32 function the quantized model should approximate but which is not itself the FP32
     * reference: bias correction changes biases for the quantized weights, so evaluation keeps comparing
     * against the model from before.
     */
    public PipelineState withCorrectedModel(OnnxModel m) {
        return new PipelineState(modelName, modelSha256, m, foldedBatchNorms, quant, null, summary, preActivations, reference);
    }

    public PipelineState withQuant(Map<String, TensorQuant> q) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms,
                java.util.Collections.unmodifiableMap(new LinkedHashMap<>(q)), null, summary, preActivations, reference);
    }

    /** Pre-activation statistics (β, γ of folded BatchNorms) per Conv, as equalization left them. */
    public PipelineState withPreActivations(Map<String, io.quantcal.kernels.dfq.PreActivation> p) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel, summary, Map.copyOf(p), reference);
    }

    public PipelineState withQdq(OnnxModel qdq) {
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdq, summary, preActivations, reference);
    }

    public PipelineState withSummary(String key, Object value) {
        Map<String, Object> s = new LinkedHashMap<>(summary);
        s.put(key, value);
        return new PipelineState(modelName, modelSha256, model, foldedBatchNorms, quant, qdqModel,
                java.util.Collections.unmodifiableMap(s), preActivations, reference);
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
