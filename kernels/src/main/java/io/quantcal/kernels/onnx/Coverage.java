package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
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

    /** The op types coverage reports: the quantizable ones. */
    static final Set<String> OPS = QuantizableNode.OP_TYPES;

    public static List<Entry> of(OnnxModel m) {
        Set<String> q = new java.util.HashSet<>();
        for (QuantizableNode n : m.quantizableNodes()) q.add(n.name());
        List<Entry> out = new ArrayList<>();
        java.util.Map<String, Integer> types = null;
        for (NodeProto n : m.nodes()) {
            if (!OPS.contains(n.getOpType())) continue;
            if (!Nodes.defaultDomain(n.getDomain())) continue;
            if (q.contains(n.getName())) {
                out.add(new Entry(n.getName(), n.getOpType(), true, null));
                continue;
            }
            if (n.getOpType().equals("MatMul")) {
                if (types == null) types = ElementTypes.infer(m);
                if (QdqPlacement.activationMatMul(m, n, types)) {
                    out.add(new Entry(n.getName(), n.getOpType(), true, ACTIVATIONS_ONLY));
                    continue;
                }
            }
            out.add(new Entry(n.getName(), n.getOpType(), false, reason(m, n)));
        }
        return out;
    }

    private static String reason(OnnxModel m, NodeProto n) {
        if (m.excluded().contains(n.getName())) return "excluded by config (quantcal.quantization.exclude)";
        if (n.getOpType().equals("ConvTranspose") && Nodes.intAttr(n, "group", 1) != 1) {
            return "grouped ConvTranspose (group " + Nodes.intAttr(n, "group", 1) + "): its per-channel weight axis (1) would"
                    + " share one scale among the groups' output channels";
        }
        String x = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        if (x != null && m.isInitializer(x)) return "input " + x + " is a constant: no activation to calibrate";
        if (w == null) return "no weight input";
        if (!m.isInitializer(w)) {
            if (n.getOpType().equals("MatMul")) {
                return "both inputs are computed at run time (" + x + " x " + w + ") but are not both float activations"
                        + " (an integer operand?)";
            }
            return "weight " + w + " is computed at run time (not a constant, even after folding)";
        }
        if (n.getOpType().equals("MatMul")) {
            return "weight " + w + " has rank " + m.initializer(w).getDimsCount() + ", expected 2 (a batched constant)";
        }
        return "not quantizable";
    }
}
