package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;

/**
 * The front end's hard-swish rule: HardSwish(x) (one op from opset 14, torch's export of {@code nn.Hardswish} at its
 * default opsets) becomes Mul(x, HardSigmoid(x; α = 1/6, β = ½)), its definition and what torch writes below opset
 * 14. ONNX Runtime has no integer HardSwish, and one cannot be written exactly from its integer ops; decomposed, the
 * {@code ort} profile quantizes the gate (its own rows in the table, a grid on [0, 1]) and ONNX Runtime runs the gate
 * as a QLinearAdd ({@link HardSigmoidAsAdd}) and the product as a QLinearMul. The one difference from a float
 * HardSwish between quantized tensors is that rounding of the gate, which the table then describes.
 *
 * <p>The same for the forms exporters write by hand (paddle2onnx below opset 14, models that spell out ReLU6):
 * {@code Add(x, 3) → Clip(0, 6) → Div(6)} (or {@code Mul(1/6)}) is the gate HardSigmoid(x; 1/6, ½), and
 * {@code Add(x, 3) → Clip(0, 6) → Mul(x, ·) → Div(6)} (PP-LCNet's hard-swish: product first) is x · that gate. The
 * same function in real arithmetic: clip(x + 3, 0, 6) / 6 = clip(x/6 + ½, 0, 1). Only where every intermediate tensor
 * has that one reader and is no graph output; the bounds and constants must be exactly 3, 0, 6 (or 1/6 to float
 * precision).
 */
public final class HardSwishDecomposition {

    private HardSwishDecomposition() {}

    /**
     * The rewritten model, the HardSwish nodes decomposed and the hand-written gates recognised (named by their
     * Clip), in graph order.
     */
    public record Result(OnnxModel model, List<String> rewritten, List<String> handWritten) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        List<String> hand = new ArrayList<>();
        List<String> constants = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!Nodes.defaultDomain(n.getDomain())) continue;
            if (n.getOpType().equals("HardSwish") && n.getInputCount() == 1 && n.getOutputCount() == 1) {
                if (e == null) e = new GraphEditor(m.graph());
                int at = e.position(n.getName());
                String x = n.getInput(0), y = n.getOutput(0);
                String gate = e.uniqueName(y + "_gate");
                e.insertBefore(at, gate(n.getName() + "_gate", x, gate));
                e.replace(at, Graphs.node("Mul", n.getName(), List.of(x, gate), List.of(y)));
                done.add(n.getName());
            } else if (n.getOpType().equals("Clip")) {
                HandWritten h = handWritten(m, n);
                if (h == null) continue;
                if (e == null) e = new GraphEditor(m.graph());
                e.remove(e.position(h.add.getName()));
                e.remove(e.position(n.getName()));
                constants.addAll(h.add.getInputList());
                constants.addAll(n.getInputList());
                constants.addAll(h.scale.getInputList());
                if (h.product == null) {
                    // the gate alone: Div(clip, 6) → HardSigmoid(x), same output
                    e.replace(e.position(h.scale.getName()), gate(h.scale.getName(), h.x, h.scale.getOutput(0)));
                } else {
                    // Mul(x, clip) → HardSigmoid(x) → gate; Div(product, 6) → Mul(x, gate), same output
                    String gate = e.uniqueName(h.product.getOutput(0) + "_gate");
                    e.replace(e.position(h.product.getName()), gate(h.product.getName(), h.x, gate));
                    e.replace(e.position(h.scale.getName()),
                            Graphs.node("Mul", h.scale.getName(), List.of(h.x, gate), List.of(h.scale.getOutput(0))));
                }
                hand.add(n.getName());
            }
        }
        if (e != null) e.dropUnused(constants);
        return new Result(e == null ? m : m.withGraph(e.build()), done, hand);
    }

    private static NodeProto gate(String name, String x, String out) {
        return Graphs.node("HardSigmoid", name, List.of(x), List.of(out), Map.of("alpha", 1.0 / 6, "beta", 0.5));
    }

    /** Add(x, 3) → the Clip(0, 6) → [Mul(x, ·) →] Div(6) | Mul(1/6): product null for the gate alone. */
    private record HandWritten(String x, NodeProto add, NodeProto product, NodeProto scale) {}

    private static HandWritten handWritten(OnnxModel m, NodeProto clip) {
        if (clip.getInputCount() < 1 || clip.getOutputCount() != 1) return null;
        double[] b = QuantizableNodeFinder.clipBounds(m, clip);
        if (b == null || b[0] != 0 || b[1] != 6) return null;
        NodeProto add = m.producer(clip.getInput(0));
        if (add == null || !binary(add, "Add") || !onlyReader(m, add.getOutput(0), clip)) return null;
        String x = operandBeside(m, add, 3f);
        if (x == null) return null;
        NodeProto next = single(m, clip.getOutput(0));
        if (next == null) return null;
        if (sixth(m, next, clip.getOutput(0))) return new HandWritten(x, add, null, next);
        if (!binary(next, "Mul") || !(next.getInput(0).equals(x) && next.getInput(1).equals(clip.getOutput(0))
                || next.getInput(1).equals(x) && next.getInput(0).equals(clip.getOutput(0)))) {
            return null;
        }
        NodeProto scale = single(m, next.getOutput(0));
        return scale != null && sixth(m, scale, next.getOutput(0)) ? new HandWritten(x, add, next, scale) : null;
    }

    /** Whether {@code n} is Div(v, 6) or Mul(v, 1/6) (either order for Mul). */
    private static boolean sixth(OnnxModel m, NodeProto n, String v) {
        if (binary(n, "Div")) {
            Float c = m.scalarConstant(n.getInput(1));
            return n.getInput(0).equals(v) && c != null && c == 6f;
        }
        if (!binary(n, "Mul")) return false;
        String other = n.getInput(0).equals(v) ? n.getInput(1) : n.getInput(1).equals(v) ? n.getInput(0) : null;
        Float c = m.scalarConstant(other);
        return c != null && Math.abs(c - 1.0 / 6) < 1e-7;
    }

    /** The input of binary {@code n} beside the scalar constant {@code c}, or null. */
    private static String operandBeside(OnnxModel m, NodeProto n, float c) {
        Float a = m.scalarConstant(n.getInput(0)), b = m.scalarConstant(n.getInput(1));
        if (b != null && b == c && a == null) return n.getInput(0);
        if (a != null && a == c && b == null) return n.getInput(1);
        return null;
    }

    private static boolean binary(NodeProto n, String op) {
        return n.getOpType().equals(op) && Nodes.defaultDomain(n.getDomain()) && n.getInputCount() == 2
                && n.getOutputCount() == 1;
    }

    /** The one reader of {@code t} when it is no graph output, else null. */
    private static NodeProto single(OnnxModel m, String t) {
        List<NodeProto> rs = m.consumers(t);
        return rs.size() == 1 && !m.isGraphOutput(t) ? rs.get(0) : null;
    }

    private static boolean onlyReader(OnnxModel m, String t, NodeProto reader) {
        NodeProto r = single(m, t);
        return r != null && r.getName().equals(reader.getName());
    }
}
