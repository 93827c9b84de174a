package io.quantcal.kernels.onnx;

import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The {@code ort} profile's constant-operand rule: an Add or Mul of a quantized activation and a one-value float
 * constant c, whose output is quantized ({@link QdqPlacement}: the activation's producer is quantized, so the op
 * is), reads c through a DequantizeLinear of one integer code, so that ONNX Runtime fuses DequantizeLinear → op →
 * QuantizeLinear into its integer QLinearAdd / QLinearMul (its QDQ rule wants every operand dequantized, in one
 * type). The code is exact: code 1 at scale c; for c &lt; 0 code 0 with zero point 1 (uint8) or code −1 (int8) at
 * scale −c; code 0 at scale 1 for c = 0. (code − zero point) · scale is c bit for bit, so nothing is rounded and the
 * table has no row for it. PaddlePaddle's PP-LCNet writes such a scale and shift after each hard-swish (24 of each in
 * PP-OCRv4 det), which otherwise ran in float between a DequantizeLinear and a QuantizeLinear.
 *
 * <p>Applied where ONNX Runtime's rule holds: the activation comes from a per-tensor 8-bit DequantizeLinear, the
 * op's only reader is a per-tensor QuantizeLinear of the same type, and the constant is a float initializer with
 * one value.
 */
final class ConstantOperands {

    private ConstantOperands() {}

    static OnnxModel rewrite(OnnxModel qdq) {
        GraphEditor e = null;
        for (NodeProto n : qdq.nodes()) {
            boolean add = n.getOpType().equals("Add");
            if (!add && !n.getOpType().equals("Mul") || !Nodes.defaultDomain(n.getDomain()) || n.getInputCount() != 2
                    || n.getOutputCount() != 1) {
                continue;
            }
            int slot = constantSlot(qdq, n);
            if (slot < 0) continue;
            NodeProto dq = qdq.producer(n.getInput(1 - slot));
            if (dq == null || !dq.getOpType().equals("DequantizeLinear") || !HardSigmoidAsAdd.perTensor(qdq, dq)) continue;
            int type = qdq.initializer(dq.getInput(2)).getDataType();
            if (HardSigmoidAsAdd.container8(type) == null) continue;
            List<NodeProto> readers = qdq.consumers(n.getOutput(0));
            if (readers.size() != 1 || qdq.isGraphOutput(n.getOutput(0))) continue;
            NodeProto q = readers.get(0);
            if (!q.getOpType().equals("QuantizeLinear") || !HardSigmoidAsAdd.perTensor(qdq, q)
                    || qdq.initializer(q.getInput(2)).getDataType() != type) {
                continue;
            }
            String c = n.getInput(slot);
            if (e == null) e = new GraphEditor(qdq.graph());
            int at = e.position(n.getName());
            String code = exactCode(e, at, n.getName() + "_constant", qdq.initializerFloats(c)[0], type, qdq.shape(c));
            e.replace(at, e.node(at).toBuilder().setInput(slot, code).build());
        }
        return e == null ? qdq : qdq.withGraph(e.build());
    }

    /** The input slot of {@code n} holding a one-value float initializer while the other does not; else −1. */
    private static int constantSlot(OnnxModel m, NodeProto n) {
        boolean a = oneFloat(m, n.getInput(0)), b = oneFloat(m, n.getInput(1));
        return a == b ? -1 : a ? 0 : 1;
    }

    private static boolean oneFloat(OnnxModel m, String t) {
        return m.isInitializer(t) && m.scalarConstant(t) != null;
    }

    /**
     * Writes a DequantizeLinear before node position {@code at} whose output is exactly {@code c} (float32), from one
     * code of the 8-bit {@code type} (uint8 or int8) with dims {@code dims}; returns its output's name.
     */
    static String exactCode(GraphEditor e, int at, String base, double c, int type, long... dims) {
        boolean unsigned = type == TensorProto.DataType.UINT8_VALUE;
        int code = c == 0 ? 0 : c > 0 ? 1 : unsigned ? 0 : -1;
        int zero = c < 0 && unsigned ? 1 : 0;
        float scale = c == 0 ? 1f : (float) Math.abs(c);
        String codes = e.uniqueName(base + "_quantized");
        String s = e.uniqueName(base + "_scale"), z = e.uniqueName(base + "_zero_point");
        String out = e.uniqueName(base + "_DequantizeLinear_Output");
        e.putInitializer(Graphs.intTensor(codes, TensorProto.DataType.forNumber(type), new int[] {code}, dims));
        e.putInitializer(Graphs.floatTensor(s, new float[] {scale}));
        e.putInitializer(Graphs.intTensor(z, TensorProto.DataType.forNumber(type), new int[] {zero}));
        e.insertBefore(at, Graphs.node("DequantizeLinear", e.uniqueName(base + "_DequantizeLinear"), List.of(codes, s, z),
                List.of(out)));
        return out;
    }
}
