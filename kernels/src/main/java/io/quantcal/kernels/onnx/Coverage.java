package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import onnx.Onnx.NodeProto;

/**
 * Which Conv, Gemm and MatMul nodes of a model are quantized and, for each one left in FP32, why: nothing is left
 * out silently.
 */
public final class Coverage {

    private Coverage() {}

    /**
     * One Conv/Gemm/MatMul node: quantized, or the reason it stays FP32; a quantized node with a reason is quantized
     * on its activations only (a MatMul of two activations).
     */
    public record Entry(String node, String opType, boolean quantized, String reason) {}

    /** What the job says of a MatMul of two activations. */
    public static final String ACTIVATIONS_ONLY = "MatMul of two activations (e.g. attention): both inputs quantized, no"
            + " weight; easyquant and adaround leave it as calibrated";


    /** Why a Conv/Gemm/MatMul inside an If, Loop or Scan stays FP32. */
    public static final String IN_SUBGRAPH = "quantcal quantizes the main graph only (a subgraph's tensors can be"
            + " neither captured as model outputs nor given Q/DQ by the exporter)";

    /** The main graph's Conv/ConvTranspose/Gemm/MatMul nodes, then those inside subgraphs (FP32, each named). */
    public static List<Entry> of(OnnxModel m) {
        java.util.Set<String> q = new java.util.HashSet<>();
        for (QuantizableNode n : m.quantizableNodes()) q.add(n.name());
        List<Entry> out = new ArrayList<>();
        var inferred = new Object() { java.util.Map<String, Integer> types; }; // element types, inferred once if a kind asks
        java.util.function.Supplier<java.util.Map<String, Integer>> elementTypes = () -> {
            if (inferred.types == null) inferred.types = ElementTypes.infer(m);
            return inferred.types;
        };
        for (NodeProto n : m.nodes()) {
            OpKind kind = OpKind.of(n.getOpType());
            if (kind == null || !Nodes.defaultDomain(n.getDomain())) continue;
            if (q.contains(n.getName())) {
                out.add(new Entry(n.getName(), n.getOpType(), true, null));
                continue;
            }
            if (kind.activationsOnly(m, n, elementTypes)) {
                out.add(new Entry(n.getName(), n.getOpType(), true, ACTIVATIONS_ONLY));
                continue;
            }
            out.add(new Entry(n.getName(), n.getOpType(), false, kind.whyLeftOut(m, n)));
        }
        out.addAll(inSubgraphs(m));
        return out;
    }

    /**
     * Why an LSTM, GRU or RNN stays FP32: ONNX Runtime's CPU provider has no integer recurrent kernel a QDQ model
     * could fuse into (its own quantizer quantizes them only dynamically, DynamicQuantizeLSTM), nor has TensorRT's
     * explicit quantization.
     */
    public static final String RECURRENT = "recurrent layer: quantcal quantizes Conv/ConvTranspose/Gemm/MatMul; a QDQ"
            + " model runs LSTM/GRU/RNN in float (ONNX Runtime quantizes them only dynamically), so its weights and"
            + " state stay FP32";

    /** Why an Einsum with a constant operand stays FP32. */
    public static final String EINSUM = "Einsum with a constant operand: quantcal quantizes Conv/ConvTranspose/Gemm/MatMul"
            + " (export the product as a MatMul to quantize it)";

    /** Why a contrib op of ONNX Runtime's graph optimizer that carries a weight stays FP32. */
    public static final String FUSED = "an ONNX Runtime contrib op, written by its graph optimizer into a saved"
            + " optimized model: give quantcal the model before optimization (the Conv/Gemm/MatMul it fused)";

    /** Contrib ops (com.microsoft) that ONNX Runtime's optimizer writes in place of a Conv, Gemm or MatMul. */
    private static final java.util.Set<String> FUSED_OPS = java.util.Set.of("FusedConv", "FusedGemm", "FusedMatMul",
            "NhwcConv", "NhwcFusedConv", "Attention", "MultiHeadAttention", "GroupQueryAttention");

    /**
     * The model's other layers with weights, which quantcal leaves in FP32 (main graph, then subgraphs): LSTM, GRU
     * and RNN, an Einsum with a float constant operand of rank 2 or more, and ONNX Runtime contrib ops that fuse a
     * Conv, Gemm or MatMul. Listed so that a run never drops a layer silently.
     */
    public static List<Entry> otherLayers(OnnxModel m) {
        List<Entry> out = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            String why = otherLayerReason(m, n);
            if (why != null) out.add(new Entry(label(n), n.getOpType(), false, why));
        }
        for (NodeProto holder : m.nodes()) {
            for (Subgraphs.Nested s : Subgraphs.nodes(holder)) {
                String why = otherLayerReason(m, s.node());
                if (why != null) out.add(new Entry(label(s.node()), s.node().getOpType(), false, "inside " + s.where()
                        + ": " + why));
            }
        }
        return out;
    }

    private static String otherLayerReason(OnnxModel m, NodeProto n) {
        String op = n.getOpType();
        if (Nodes.defaultDomain(n.getDomain())) {
            if (op.equals("LSTM") || op.equals("GRU") || op.equals("RNN")) return RECURRENT;
            if (op.equals("Einsum")) {
                for (String in : n.getInputList()) {
                    if (!m.isInitializer(in)) continue;
                    var t = m.initializer(in);
                    if (t.getDimsCount() >= 2 && (t.getDataType() == onnx.Onnx.TensorProto.DataType.FLOAT_VALUE
                            || t.getDataType() == onnx.Onnx.TensorProto.DataType.DOUBLE_VALUE)) return EINSUM;
                }
            }
            return null;
        }
        return n.getDomain().equals("com.microsoft") && FUSED_OPS.contains(op) ? FUSED : null;
    }

    private static String label(NodeProto n) {
        return n.getName().isEmpty() ? "(unnamed, output " + n.getOutput(0) + ")" : n.getName();
    }

    /** The Conv/ConvTranspose/Gemm/MatMul nodes inside the model's subgraphs, each FP32 with its place. */
    public static List<Entry> inSubgraphs(OnnxModel m) {
        List<Entry> out = new ArrayList<>();
        for (NodeProto holder : m.nodes()) {
            for (Subgraphs.Nested s : Subgraphs.nodes(holder)) {
                NodeProto n = s.node();
                if (OpKind.of(n.getOpType()) == null || !Nodes.defaultDomain(n.getDomain())) continue;
                out.add(new Entry(label(n), n.getOpType(), false, "inside " + s.where() + ": " + IN_SUBGRAPH));
            }
        }
        return out;
    }
}
