package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * The subgraphs a node carries (If's branches, Loop's and Scan's bodies, recursively) as the main graph sees them.
 * quantcal edits the main graph only, so two things matter: the names a subgraph reads from the enclosing scope, which
 * are read by the node that holds it as surely as its inputs are (the front end must not fold them away, rename or
 * drop them: Silero VAD's convolutions, for one, read their weights from inside an If); and the Conv/Gemm/MatMul nodes
 * inside, which stay FP32 and are reported so (coverage), never left out silently.
 */
public final class Subgraphs {

    private Subgraphs() {}

    /** A node inside a subgraph, and where: "the then_branch of If node 'vad'" (outermost first). */
    public record Nested(NodeProto node, String where) {}

    /** Whether {@code n} carries a subgraph. */
    static boolean has(NodeProto n) {
        for (AttributeProto a : n.getAttributeList()) if (a.hasG() || a.getGraphsCount() > 0) return true;
        return false;
    }

    /** The nodes inside {@code n}'s subgraphs, recursively, in graph order. */
    public static List<Nested> nodes(NodeProto n) {
        List<Nested> out = new ArrayList<>();
        collect(n, "", out);
        return out;
    }

    private static void collect(NodeProto n, String outer, List<Nested> out) {
        for (AttributeProto a : n.getAttributeList()) {
            for (GraphProto g : graphs(a)) {
                String where = outer + (outer.isEmpty() ? "" : ", in ") + "the " + a.getName() + " of "
                        + n.getOpType() + " node '" + n.getName() + "'";
                for (NodeProto inner : g.getNodeList()) {
                    out.add(new Nested(inner, where));
                    collect(inner, where, out);
                }
            }
        }
    }

    /** The names {@code n}'s subgraphs read from the graph around {@code n} (none when it has no subgraph). */
    static Set<String> outerReads(NodeProto n) {
        Set<String> out = new LinkedHashSet<>();
        for (AttributeProto a : n.getAttributeList()) {
            for (GraphProto g : graphs(a)) {
                Set<String> defined = new HashSet<>();
                for (ValueInfoProto v : g.getInputList()) defined.add(v.getName());
                for (TensorProto t : g.getInitializerList()) defined.add(t.getName());
                for (NodeProto inner : g.getNodeList()) defined.addAll(inner.getOutputList());
                for (NodeProto inner : g.getNodeList()) {
                    for (String i : inner.getInputList()) if (!i.isEmpty() && !defined.contains(i)) out.add(i);
                    for (String i : outerReads(inner)) if (!defined.contains(i)) out.add(i);
                }
                for (ValueInfoProto v : g.getOutputList()) {
                    if (!defined.contains(v.getName())) out.add(v.getName());
                }
            }
        }
        return out;
    }

    /** Whether a subgraph of one of {@code t}'s readers reads {@code t} (by name, from the enclosing graph). */
    static boolean readInside(OnnxModel m, String t) {
        for (NodeProto c : m.consumers(t)) if (has(c) && outerReads(c).contains(t)) return true;
        return false;
    }

    /** What {@code n} reads: its inputs (without the empty ones), then what its subgraphs read from outside. */
    static List<String> reads(NodeProto n) {
        Set<String> out = new LinkedHashSet<>();
        for (String i : n.getInputList()) if (!i.isEmpty()) out.add(i);
        if (has(n)) out.addAll(outerReads(n));
        return new ArrayList<>(out);
    }

    /** Every name used inside {@code n}'s subgraphs (so that a new main-graph name shadows none). */
    public static void names(NodeProto n, Set<String> into) {
        for (AttributeProto a : n.getAttributeList()) for (GraphProto g : graphs(a)) graphNames(g, into);
    }

    /** Every node and value name of {@code g} (inputs, outputs, value_info, initializers) and of its subgraphs. */
    static void graphNames(GraphProto g, Set<String> into) {
        for (ValueInfoProto v : g.getInputList()) into.add(v.getName());
        for (ValueInfoProto v : g.getOutputList()) into.add(v.getName());
        for (ValueInfoProto v : g.getValueInfoList()) into.add(v.getName());
        for (TensorProto t : g.getInitializerList()) into.add(t.getName());
        for (NodeProto inner : g.getNodeList()) {
            into.add(inner.getName());
            into.addAll(inner.getInputList());
            into.addAll(inner.getOutputList());
            names(inner, into);
        }
    }

    /**
     * {@code a} with {@code f} applied to each graph it holds (a GRAPH or GRAPHS attribute); {@code a} itself when it
     * holds none or {@code f} returned every graph unchanged (the same object), so that a caller can tell an edit.
     */
    static AttributeProto mapGraphs(AttributeProto a, java.util.function.UnaryOperator<GraphProto> f) {
        if (a.hasG()) {
            GraphProto g = f.apply(a.getG());
            return g == a.getG() ? a : a.toBuilder().setG(g).build();
        }
        if (a.getGraphsCount() == 0) return a;
        List<GraphProto> out = new ArrayList<>();
        boolean same = true;
        for (GraphProto g : a.getGraphsList()) {
            GraphProto r = f.apply(g);
            same &= r == g;
            out.add(r);
        }
        return same ? a : a.toBuilder().clearGraphs().addAllGraphs(out).build();
    }

    /** {@code n} with {@link #mapGraphs} applied to each of its attributes; {@code n} itself when nothing changed. */
    static NodeProto mapGraphs(NodeProto n, java.util.function.UnaryOperator<GraphProto> f) {
        NodeProto.Builder b = null;
        for (int i = 0; i < n.getAttributeCount(); i++) {
            AttributeProto a = n.getAttribute(i);
            AttributeProto r = mapGraphs(a, f);
            if (r != a) {
                if (b == null) b = n.toBuilder();
                b.setAttribute(i, r);
            }
        }
        return b == null ? n : b.build();
    }

    private static List<GraphProto> graphs(AttributeProto a) {
        if (a.hasG()) return List.of(a.getG());
        return a.getGraphsList();
    }
}
