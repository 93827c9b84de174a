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
 */
public final class HardSwishDecomposition {

    private HardSwishDecomposition() {}

    /** The rewritten model and the HardSwish nodes decomposed, in graph order. */
    public record Result(OnnxModel model, List<String> rewritten) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("HardSwish") || !Nodes.defaultDomain(n.getDomain()) || n.getInputCount() != 1
                    || n.getOutputCount() != 1) {
                continue;
            }
            if (e == null) e = new GraphEditor(m.graph());
            int at = e.position(n.getName());
            String x = n.getInput(0), y = n.getOutput(0);
            String gate = e.uniqueName(y + "_gate");
            e.insertBefore(at, Graphs.node("HardSigmoid", e.uniqueName(n.getName() + "_gate"), List.of(x), List.of(gate),
                    Map.of("alpha", 1.0 / 6, "beta", 0.5)));
            e.replace(at, Graphs.node("Mul", n.getName(), List.of(x, gate), List.of(y)));
            done.add(n.getName());
        }
        return new Result(e == null ? m : m.withGraph(e.build()), done);
    }
}
