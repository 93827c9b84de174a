package io.quantcal.kernels.onnx;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * The element type of every value of a graph, as far as it can be told without running it: what the graph
 * declares (inputs, outputs, value_info, initializers), then propagated in graph order with the operators'
 * type rules (Shape gives int64, Cast its {@code to}, comparisons bool, Constant its value's type, anything
 * else the type of its first typed input). Tells float activations apart from the integer shape arithmetic
 * that exporters write around Reshape (Concat of int64 dims must never get a QuantizeLinear).
 */
final class ElementTypes {

    private static final Set<String> INT64_OUT = Set.of("Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression");
    private static final Set<String> BOOL_OUT = Set.of("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
            "Not", "And", "Or", "Xor", "IsNaN", "IsInf");

    private ElementTypes() {}

    /** Tensor name → ONNX element type (TensorProto.DataType number); unknown tensors are absent. */
    static Map<String, Integer> infer(OnnxModel m) {
        Map<String, Integer> t = new HashMap<>();
        for (TensorProto i : m.graph().getInitializerList()) t.put(i.getName(), i.getDataType());
        for (ValueInfoProto v : m.graph().getInputList()) declared(t, v);
        for (ValueInfoProto v : m.graph().getValueInfoList()) declared(t, v);
        for (ValueInfoProto v : m.graph().getOutputList()) declared(t, v);
        for (NodeProto n : m.nodes()) {
            Integer type = rule(n, t);
            if (type == null) continue;
            // the first output carries the rule's type; TopK/MaxPool-style second outputs are indices
            for (int k = 0; k < n.getOutputCount(); k++) {
                String o = n.getOutput(k);
                if (o.isEmpty()) continue;
                t.putIfAbsent(o, k == 0 ? type : secondOutput(n, type));
            }
        }
        return t;
    }

    private static void declared(Map<String, Integer> t, ValueInfoProto v) {
        if (v.getType().hasTensorType() && v.getType().getTensorType().getElemType() != 0) {
            t.putIfAbsent(v.getName(), v.getType().getTensorType().getElemType());
        }
    }

    private static int secondOutput(NodeProto n, int first) {
        return switch (n.getOpType()) {
            case "MaxPool", "TopK", "Unique" -> TensorProto.DataType.INT64_VALUE;
            default -> first;
        };
    }

    private static Integer rule(NodeProto n, Map<String, Integer> t) {
        String op = n.getOpType();
        if (!Nodes.defaultDomain(n.getDomain())) return firstTyped(n, t);
        if (INT64_OUT.contains(op)) return TensorProto.DataType.INT64_VALUE;
        if (BOOL_OUT.contains(op)) return TensorProto.DataType.BOOL_VALUE;
        switch (op) {
            case "Cast":
                return (int) Nodes.intAttr(n, "to", 0);
            case "CastLike":
                return t.get(Nodes.input(n, 1));
            case "Constant": {
                for (AttributeProto a : n.getAttributeList()) {
                    switch (a.getName()) {
                        case "value": return a.getT().getDataType();
                        case "value_float", "value_floats": return TensorProto.DataType.FLOAT_VALUE;
                        case "value_int", "value_ints": return TensorProto.DataType.INT64_VALUE;
                        case "value_string", "value_strings": return TensorProto.DataType.STRING_VALUE;
                        default: break;
                    }
                }
                return null;
            }
            case "ConstantOfShape": {
                AttributeProto a = Nodes.attribute(n, "value");
                return a == null ? TensorProto.DataType.FLOAT_VALUE : a.getT().getDataType();
            }
            case "Where":
                return t.get(Nodes.input(n, 1));
            case "QuantizeLinear": {
                String zp = Nodes.input(n, 2);
                return zp != null && t.containsKey(zp) ? t.get(zp) : TensorProto.DataType.UINT8_VALUE;
            }
            case "DequantizeLinear":
                return TensorProto.DataType.FLOAT_VALUE;
            default:
                return firstTyped(n, t);
        }
    }

    private static Integer firstTyped(NodeProto n, Map<String, Integer> t) {
        for (String i : n.getInputList()) {
            if (!i.isEmpty() && t.containsKey(i)) return t.get(i);
        }
        return null;
    }
}
