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

    /** The Conv/ConvTranspose/Gemm/MatMul nodes inside the model's subgraphs, each FP32 with its place. */
    public static List<Entry> inSubgraphs(OnnxModel m) {
        List<Entry> out = new ArrayList<>();
        for (NodeProto holder : m.nodes()) {
            for (Subgraphs.Nested s : Subgraphs.nodes(holder)) {
                NodeProto n = s.node();
                if (OpKind.of(n.getOpType()) == null || !Nodes.defaultDomain(n.getDomain())) continue;
                String name = n.getName().isEmpty() ? "(unnamed, output " + n.getOutput(0) + ")" : n.getName();
                out.add(new Entry(name, n.getOpType(), false, "inside " + s.where() + ": " + IN_SUBGRAPH));
            }
        }
        return out;
    }
}
