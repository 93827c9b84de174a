package io.quantcal.kernels.onnx;

import java.util.List;
import java.util.Set;
import onnx.Onnx.NodeProto;

/**
 * Whether a model's nodes still mean the same after its default-domain opset import is raised (the
 * QDQ export raises it to 13 for per-channel and to 21 for 16-bit Q/DQ). Raising the import only
 * relabels the model; a node written in a form that a later operator version dropped would make the
 * model invalid, so such a node is an error that names it, rather than a silent rewrite.
 *
 * <p>The forms checked are the incompatible schema changes between opsets 10 and 21 of operators
 * found in exported CNNs: attributes that became inputs (Clip and Pad at 11, Dropout at 12, Squeeze,
 * Unsqueeze, Split and ReduceSum at 13, the other Reduce* at 18), Resize's inputs at 11, Split's
 * num_outputs at 18, GridSample's mode names at 20, GroupNormalization's scale shape at 21, and the
 * operators removed since 10 (Upsample, Scatter).
 */
final class OpsetUpgrade {

    private static final Set<String> REDUCE_18 = Set.of("ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd",
            "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");

    private OpsetUpgrade() {}

    /**
     * The model with the forms that only moved from attributes to inputs rewritten for opset {@code to}, as the ONNX
     * version converter does: Clip's min/max (11), Pad's pads and value (11), Dropout's ratio (12), the axes of
     * Squeeze, Unsqueeze and ReduceSum and Split's split (13), the other Reduce*'s axes and an even Split's
     * num_outputs (18), GridSample's mode names (20: bilinear → linear, bicubic → cubic), and Resize-10's inputs (11:
     * an empty roi, with the asymmetric coordinates and floor rounding that Resize-10 meant). The opset import itself
     * is not changed here.
     */
    static OnnxModel rewrite(OnnxModel m, long to) {
        long from = m.opset();
        GraphEditor edit = new GraphEditor(m.graph());
        boolean changed = false;
        for (int i = 0; i < m.graph().getNodeCount(); i++) {
            NodeProto n = edit.node(i);
            NodeProto r = withSubgraphs(Nodes.defaultDomain(n.getDomain()) ? rewrite(n, from, to, edit) : n, from, to, edit);
            if (r != n) {
                edit.replace(i, r);
                changed = true;
            }
        }
        return changed ? m.withGraph(edit.build()) : m;
    }

    /**
     * {@code n} with the nodes of its subgraphs (If branches, Loop and Scan bodies, at any depth) rewritten too: they
     * run under the model's opset import. The constants that attributes become are main-graph initializers, which a
     * subgraph reads by name.
     */
    private static NodeProto withSubgraphs(NodeProto n, long from, long to, GraphEditor edit) {
        return Subgraphs.mapGraphs(n, g -> subgraph(g, from, to, edit));
    }

    private static onnx.Onnx.GraphProto subgraph(onnx.Onnx.GraphProto g, long from, long to, GraphEditor edit) {
        onnx.Onnx.GraphProto.Builder b = null;
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            NodeProto r = withSubgraphs(Nodes.defaultDomain(n.getDomain()) ? rewrite(n, from, to, edit) : n, from, to, edit);
            if (r != n) {
                if (b == null) b = g.toBuilder();
                b.setNode(i, r);
            }
        }
        return b == null ? g : b.build();
    }

    private static NodeProto rewrite(NodeProto n, long from, long to, GraphEditor edit) {
        String op = n.getOpType();
        NodeProto.Builder b = n.toBuilder();
        if (crosses(from, to, 11)) {
            if (op.equals("Clip") && (Nodes.has(n, "min") || Nodes.has(n, "max"))) {
                // an absent min stays an absent (empty) input; an absent max is simply not given
                String lo = Nodes.has(n, "min") ? floatToInput(edit, b, n, "min") : "";
                boolean hasMax = Nodes.has(n, "max");
                b.addInput(lo);
                if (hasMax) b.addInput(floatToInput(edit, b, n, "max"));
                return b.build();
            }
            if (op.equals("Pad") && Nodes.has(n, "pads")) {
                b.addInput(intsToInput(edit, b, n, "pads"));
                if (Nodes.has(n, "value")) b.addInput(floatToInput(edit, b, n, "value"));
                return b.build();
            }
            if (op.equals("Resize") && from < 11) {
                String roi = edit.uniqueName(n.getName() + "_roi");
                edit.putInitializer(Graphs.floatTensor(roi, new float[0], 0));
                String scales = n.getInput(1);
                b.setInput(1, roi).addInput(scales);
                b.addAttribute(Graphs.attribute("coordinate_transformation_mode", "asymmetric"));
                if (Nodes.stringAttr(n, "mode", "nearest").equals("nearest")) b.addAttribute(Graphs.attribute("nearest_mode", "floor"));
                return b.build();
            }
        }
        if (crosses(from, to, 12) && op.equals("Dropout") && Nodes.has(n, "ratio")) {
            // inference: Dropout is the identity whatever the ratio; keep it as an input for the record
            b.addInput(floatToInput(edit, b, n, "ratio"));
            return b.build();
        }
        if (crosses(from, to, 13)) {
            boolean axesOp = op.equals("Squeeze") || op.equals("Unsqueeze") || op.equals("ReduceSum");
            String attr = axesOp && Nodes.has(n, "axes") ? "axes" : op.equals("Split") && Nodes.has(n, "split") ? "split" : null;
            if (attr != null) {
                b.addInput(intsToInput(edit, b, n, attr));
                return b.build();
            }
        }
        if (crosses(from, to, 18)) {
            // the other Reduce* take their axes as an input (absent axes still reduce over all of them)
            if (REDUCE_18.contains(op) && Nodes.has(n, "axes")) {
                b.addInput(intsToInput(edit, b, n, "axes"));
                return b.build();
            }
            // an even Split names its output count
            if (op.equals("Split") && Nodes.input(n, 1) == null && !Nodes.has(n, "num_outputs")) {
                b.addAttribute(Graphs.attribute("num_outputs", (long) n.getOutputCount()));
                return b.build();
            }
        }
        if (crosses(from, to, 20) && op.equals("GridSample")) {
            String mode = Nodes.stringAttr(n, "mode", "bilinear");
            if (mode.equals("bilinear") || mode.equals("bicubic")) {
                removeAttribute(b, "mode");
                b.addAttribute(Graphs.attribute("mode", mode.equals("bilinear") ? "linear" : "cubic"));
                return b.build();
            }
        }
        return n;
    }

    /** Moves float attribute {@code attr} of {@code n} into a scalar initializer; returns its name. */
    static String floatToInput(GraphEditor edit, NodeProto.Builder b, NodeProto n, String attr) {
        String name = edit.uniqueName(n.getName() + "_" + attr);
        edit.putInitializer(Graphs.floatTensor(name, new float[] {(float) Nodes.floatAttr(n, attr, 0)}));
        removeAttribute(b, attr);
        return name;
    }

    /** Moves ints attribute {@code attr} of {@code n} into a 1-D INT64 initializer; returns its name. */
    static String intsToInput(GraphEditor edit, NodeProto.Builder b, NodeProto n, String attr) {
        long[] v = Nodes.intsAttr(n, attr);
        String name = edit.uniqueName(n.getName() + "_" + attr);
        edit.putInitializer(Graphs.int64Tensor(name, v, v.length));
        removeAttribute(b, attr);
        return name;
    }

    static void removeAttribute(NodeProto.Builder b, String name) {
        for (int i = b.getAttributeCount() - 1; i >= 0; i--) if (b.getAttribute(i).getName().equals(name)) b.removeAttribute(i);
    }

    /** @throws ModelException naming the first node whose form opset {@code to} no longer accepts */
    static void check(OnnxModel m, long to, String reason) {
        long from = m.opset();
        List<NodeProto> all = new java.util.ArrayList<>(m.nodes());
        for (NodeProto holder : m.nodes()) for (Subgraphs.Nested s : Subgraphs.nodes(holder)) all.add(s.node());
        for (NodeProto n : all) {
            if (!Nodes.defaultDomain(n.getDomain())) continue;
            String problem = problem(n, from, to);
            if (problem != null) {
                throw new ModelException(m.source() + ": " + Nodes.describe(n) + " " + problem + ", which opset " + to
                        + " no longer accepts; quantcal must raise the opset from " + from + " to " + to + " because "
                        + reason + ". Re-export the model at opset " + to + " or later.");
            }
        }
    }

    private static boolean crosses(long from, long to, long version) {
        return from < version && to >= version;
    }

    private static String problem(NodeProto n, long from, long to) {
        String op = n.getOpType();
        if (crosses(from, to, 11)) {
            if (op.equals("Clip") && (Nodes.has(n, "min") || Nodes.has(n, "max"))) return "has min/max attributes (inputs since opset 11)";
            if (op.equals("Pad") && Nodes.has(n, "pads")) return "has a pads attribute (an input since opset 11)";
            if (op.equals("Resize")) return "uses the opset-10 inputs (X, scales); opset 11 added roi before scales";
            if (op.equals("Upsample")) return "is deprecated (use Resize)";
            if (op.equals("Scatter")) return "is deprecated (use ScatterElements)";
        }
        if (crosses(from, to, 12) && op.equals("Dropout") && Nodes.has(n, "ratio")) {
            return "has a ratio attribute (an input since opset 12)";
        }
        if (crosses(from, to, 13)) {
            if ((op.equals("Squeeze") || op.equals("Unsqueeze") || op.equals("ReduceSum")) && Nodes.has(n, "axes")) {
                return "has an axes attribute (an input since opset 13)";
            }
            if (op.equals("Split") && Nodes.has(n, "split")) return "has a split attribute (an input since opset 13)";
        }
        if (crosses(from, to, 18)) {
            if (REDUCE_18.contains(op) && Nodes.has(n, "axes")) return "has an axes attribute (an input since opset 18)";
            if (op.equals("Split") && Nodes.input(n, 1) == null && !Nodes.has(n, "num_outputs")
                    && !(from < 13 && Nodes.has(n, "split"))) {
                return "splits evenly without num_outputs (required since opset 18)";
            }
        }
        if (crosses(from, to, 20) && op.equals("GridSample")) {
            String mode = Nodes.stringAttr(n, "mode", "bilinear");
            if (mode.equals("bilinear") || mode.equals("bicubic")) return "uses mode " + mode + " (renamed in opset 20)";
        }
        if (crosses(from, to, 21) && op.equals("GroupNormalization")) {
            return "has per-group scale and bias (per-channel since opset 21)";
        }
        return null;
    }
}
