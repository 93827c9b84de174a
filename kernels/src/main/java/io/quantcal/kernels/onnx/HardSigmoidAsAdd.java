package io.quantcal.kernels.onnx;

import io.quantcal.kernels.quant.QuantGrid;
import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The {@code ort} profile's HardSigmoid rule: DequantizeLinear → HardSigmoid(α, β) → QuantizeLinear(s, Z) becomes
 * DequantizeLinear → Add(β/α) → QuantizeLinear(s/α, Z), which ONNX Runtime fuses into one integer QLinearAdd. torch
 * exports MobileNetV3's hard-swish at opsets below 14 as x · HardSigmoid(x) (and its squeeze-excitation gate as a
 * HardSigmoid); ONNX Runtime has no integer HardSigmoid, so each ran in float between a DequantizeLinear and a
 * QuantizeLinear: on torchvision's MobileNetV3-small at 224×224 those three took 28% of the QDQ model's kernel time.
 *
 * <p>The same codes. HardSigmoid is y = clip(αx + β, 0, 1) and its QuantizeLinear writes clamp(round(y / s) + Z). With
 * α &gt; 0, (x + β/α) / (s/α) = (αx + β) / s, so the rewritten QuantizeLinear writes clamp(round((αx + β) / s) + Z)
 * without HardSigmoid's clip. The clip changes nothing when the grid already does it: below, the zero point at the
 * container's bottom (0.0 is the lowest code, so every αx + β ≤ 0 lands on it, as clip's 0 does); above, 1.0 rounds
 * to the grid's top code (s · (q_max − Z − ½) &lt; 1; at equality 1.0 is a tie that rounds to even, below the top),
 * so every αx + β ≥ 1 lands on the top code, as clip's 1 does. Float32 arithmetic can still decide a real-number tie
 * ((αx + β) / s within rounding of k + ½, as at x = 0 with s = 1/255) the other way, one code apart: the latitude
 * there already is between the table's double-precision scales and the float32 ones QuantizeLinear reads.
 * HardSigmoid's output rows in the table (s, Z) are what its readers' DequantizeLinear still uses; a HardSigmoid
 * whose grid does not clip as it does (or α ≤ 0) is left in float.
 *
 * <p>Applied where nothing else sees the change: a per-tensor 8-bit DequantizeLinear feeds the HardSigmoid, whose
 * only reader is a per-tensor QuantizeLinear (not a graph output). β/α enters as one integer code of the input's
 * type behind a DequantizeLinear (QLinearAdd takes both operands in one type): code 1 at scale β/α, or code 0 with
 * zero point 1 at scale −β/α for uint8 (code −1 for int8) when it is negative.
 */
final class HardSigmoidAsAdd {

    private HardSigmoidAsAdd() {}

    /** {@code qdq} with every HardSigmoid that the rule applies to rewritten; the same model when there is none. */
    static OnnxModel rewrite(OnnxModel qdq) {
        GraphEditor e = null;
        for (NodeProto hs : qdq.nodes()) {
            if (!hs.getOpType().equals("HardSigmoid") || !Nodes.defaultDomain(hs.getDomain())) continue;
            NodeProto dq = qdq.producer(hs.getInput(0));
            if (dq == null || !dq.getOpType().equals("DequantizeLinear") || !perTensor(qdq, dq)) continue;
            String y = hs.getOutput(0);
            List<NodeProto> readers = qdq.consumers(y);
            if (readers.size() != 1 || qdq.isGraphOutput(y)) continue;
            NodeProto q = readers.get(0);
            if (!q.getOpType().equals("QuantizeLinear") || !perTensor(qdq, q)) continue;
            double alpha = Nodes.floatAttr(hs, "alpha", 0.2), beta = Nodes.floatAttr(hs, "beta", 0.5);
            if (!(alpha > 0)) continue;
            int xType = qdq.initializer(dq.getInput(2)).getDataType();
            QuantGrid range = container8(xType);
            if (range == null || qdq.initializer(q.getInput(2)).getDataType() != xType) continue;
            double s = qdq.initializerFloats(q.getInput(1))[0];
            int z = qdq.initializerInts(q.getInput(2))[0];
            if (z != range.qmin() || !(s > 0) || s * (range.qmax() - z - 0.5) >= 1.0) continue;

            if (e == null) e = new GraphEditor(qdq.graph());
            String base = hs.getName();
            String qs = e.uniqueName(y + "_scale_over_alpha");
            e.putInitializer(Graphs.floatTensor(qs, new float[] {(float) (s / alpha)}));
            int at = e.position(hs.getName());
            String cf = ConstantOperands.exactCode(e, at, base + "_offset", beta / alpha, xType);
            e.replace(at, Graphs.node("Add", base, List.of(hs.getInput(0), cf), List.of(y)));
            int qa = e.position(q.getName());
            e.replace(qa, e.node(qa).toBuilder().setInput(1, qs).build());
        }
        return e == null ? qdq : qdq.withGraph(e.build());
    }

    /** Scalar float scale and scalar integer zero point, both initializers. */
    static boolean perTensor(OnnxModel m, NodeProto qdq) {
        if (qdq.getInputCount() < 3 || !m.isInitializer(qdq.getInput(1)) || !m.isInitializer(qdq.getInput(2))) return false;
        TensorProto s = m.initializer(qdq.getInput(1)), z = m.initializer(qdq.getInput(2));
        return s.getDimsCount() == 0 && z.getDimsCount() == 0 && s.getDataType() == TensorProto.DataType.FLOAT_VALUE;
    }

    /** The 8-bit grid whose container is the zero point's type (uint8 or int8); null for any other type. */
    static QuantGrid container8(int type) {
        if (type == TensorProto.DataType.UINT8_VALUE) return QuantGrid.of(8, false);
        if (type == TensorProto.DataType.INT8_VALUE) return QuantGrid.of(8, true);
        return null;
    }
}
