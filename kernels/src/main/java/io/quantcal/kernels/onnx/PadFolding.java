package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The front end's pad rule: an explicit Pad that the next op can do itself is not left as an op of its own.
 * <ul>
 *   <li>A Pad whose pads are all zero is the identity and goes (torch.onnx writes one before every
 *       {@code AvgPool2d}: DenseNet's three transitions).</li>
 *   <li>A constant Pad of zeros over the spatial axes only, read by one Conv or one AveragePool (and nothing else),
 *       becomes part of that op's {@code pads} (ONNX Runtime's PadFusion does the same in float; TensorFlow-style
 *       "same" padding and paddle2onnx write such Pads).</li>
 * </ul>
 * Why: in a QDQ model a Pad between two quantized ops ran in float between a DequantizeLinear and a QuantizeLinear
 * (ONNX Runtime has no QDQ rule for Pad), which also cut its integer chain (DenseNet-121 at 224: three float Pads and
 * three more QuantizeLinears in the optimized graph).
 *
 * <p>The same numbers: Conv's {@code pads} add zeros on each spatial side, exactly what the Pad wrote; an AveragePool
 * takes them only with {@code count_include_pad = 1} (the padded zeros count in the divisor, as they did as real
 * values), so either it already has it or its own pads are zero and it is set; and only with {@code ceil_mode = 0},
 * where no window reaches past the padded input; and each of its pads smaller than its window, which ONNX Runtime
 * requires (tested in ONNX Runtime against the original, bit for bit).
 * Only where certain: mode "constant" with a zero (or absent) value, pads a constant (attribute below opset 11, a
 * constant input from 11, no {@code axes} input), non-negative, zero on the batch and channel axes; the consumer
 * without {@code auto_pad}; the Pad's output no graph output; no subgraph (If, Loop, Scan) in the model.
 */
public final class PadFolding {

    private PadFolding() {}

    /** The rewritten model, the Pads removed as identities and the Pads folded into their reader, in graph order. */
    public record Result(OnnxModel model, List<String> removed, List<String> folded) {}

    public static Result rewrite(OnnxModel m) {
        // a subgraph (If, Loop, Scan) may read a Pad's output by name: leave such models as they are
        for (NodeProto n : m.nodes()) {
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG() || a.getGraphsCount() > 0) return new Result(m, List.of(), List.of());
            }
        }
        GraphEditor e = null;
        List<String> removed = new ArrayList<>(), folded = new ArrayList<>();
        Set<String> dropped = new LinkedHashSet<>();
        for (NodeProto pad : m.nodes()) {
            if (!pad.getOpType().equals("Pad") || !Nodes.defaultDomain(pad.getDomain()) || pad.getOutputCount() != 1) continue;
            long[] pads = pads(m, pad);
            if (pads == null || pads.length == 0 || pads.length % 2 != 0) continue;
            String y = pad.getOutput(0);
            if (m.isGraphOutput(y)) continue;
            boolean zero = true;
            for (long p : pads) zero &= p == 0;
            if (zero) {
                if (e == null) e = new GraphEditor(m.graph());
                int at = e.position(pad.getName());
                // its input as edited: an earlier Pad of nothing may have been its producer
                String x = e.node(at).getInput(0);
                e.remove(at);
                for (NodeProto r : m.consumers(y)) e.rewireAll(e.position(r.getName()), y, x);
                removed.add(pad.getName());
                if (pad.getInputCount() > 1) dropped.addAll(pad.getInputList().subList(1, pad.getInputCount()));
                continue;
            }
            if (!Nodes.stringAttr(pad, "mode", "constant").equals("constant") || !zeroValue(m, pad)) continue;
            int rank = pads.length / 2;
            if (rank < 3 || pads[0] != 0 || pads[1] != 0 || pads[rank] != 0 || pads[rank + 1] != 0) continue;
            boolean negative = false;
            for (long p : pads) negative |= p < 0;
            if (negative) continue;
            List<NodeProto> readers = m.consumers(y);
            if (readers.size() != 1) continue;
            NodeProto r = readers.get(0);
            if (!r.getInput(0).equals(y) || !Nodes.defaultDomain(r.getDomain())) continue;
            for (int i = 1; i < r.getInputCount(); i++) if (r.getInput(i).equals(y)) r = null;
            if (r == null || !Nodes.stringAttr(r, "auto_pad", "NOTSET").equals("NOTSET")) continue;
            boolean avg = r.getOpType().equals("AveragePool");
            if (!r.getOpType().equals("Conv") && !avg) continue;
            int spatial = rank - 2;
            long[] own = Nodes.intsAttr(r, "pads");
            if (own == null) own = new long[2 * spatial];
            if (own.length != 2 * spatial) continue;
            boolean ownZero = true;
            for (long p : own) ownZero &= p == 0;
            if (avg && (Nodes.intAttr(r, "ceil_mode", 0) != 0
                    || Nodes.intAttr(r, "count_include_pad", 0) != 1 && !ownZero)) continue;
            long[] sum = new long[2 * spatial];
            for (int i = 0; i < spatial; i++) {
                sum[i] = own[i] + pads[2 + i];
                sum[spatial + i] = own[spatial + i] + pads[rank + 2 + i];
            }
            // ONNX Runtime's pooling wants each pad smaller than the window
            long[] kernel = Nodes.intsAttr(r, "kernel_shape");
            boolean fits = true;
            for (int i = 0; avg && i < spatial; i++) {
                fits &= kernel != null && kernel.length == spatial && sum[i] < kernel[i] && sum[spatial + i] < kernel[i];
            }
            if (!fits) continue;
            if (e == null) e = new GraphEditor(m.graph());
            int padAt = e.position(pad.getName()), readerAt = e.position(r.getName());
            NodeProto.Builder b = e.node(readerAt).toBuilder().setInput(0, e.node(padAt).getInput(0)).clearAttribute();
            for (AttributeProto a : r.getAttributeList()) {
                if (!a.getName().equals("pads") && !a.getName().equals("count_include_pad")) b.addAttribute(a);
            }
            b.addAttribute(Graphs.attribute("pads", sum));
            if (avg) b.addAttribute(Graphs.attribute("count_include_pad", 1L));
            e.replace(readerAt, b.build());
            e.remove(padAt);
            if (pad.getInputCount() > 1) dropped.addAll(pad.getInputList().subList(1, pad.getInputCount()));
            folded.add(pad.getName());
        }
        if (e == null) return new Result(m, removed, folded);
        dropped.removeIf(String::isEmpty);
        e.dropUnused(dropped);
        return new Result(m.withGraph(e.build()), removed, folded);
    }

    /** The pads of a Pad: its attribute (opset &lt; 11) or its constant second input; null when unknown or axed. */
    private static long[] pads(OnnxModel m, NodeProto pad) {
        if (Nodes.has(pad, "pads")) return Nodes.intsAttr(pad, "pads");
        String p = Nodes.input(pad, 1);
        if (p == null || !m.isInitializer(p) || Nodes.input(pad, 3) != null) return null;
        int[] v = m.initializerInts(p);
        long[] l = new long[v.length];
        for (int i = 0; i < v.length; i++) l[i] = v[i];
        return l;
    }

    /** True when the Pad writes zeros: no value, or a constant one that is 0. */
    private static boolean zeroValue(OnnxModel m, NodeProto pad) {
        if (Nodes.has(pad, "value")) return Nodes.floatAttr(pad, "value", 0) == 0;
        String c = Nodes.input(pad, 2);
        if (c == null) return true;
        if (!m.isInitializer(c)) return false;
        TensorProto t = m.initializer(c);
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) return false;
        float[] v = m.initializerFloats(c);
        return v.length == 1 && v[0] == 0f;
    }
}
