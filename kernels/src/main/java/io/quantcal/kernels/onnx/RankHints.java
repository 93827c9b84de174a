package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;

/**
 * The {@code ort} profile's rank declarations: every tensor whose rank the graph fixes through a chain of
 * rank-preserving operators ending at a Conv's input (whose rank is its weight's), but which ONNX shape inference
 * cannot see (those tied to the output of a Reshape whose target is computed at run time), gets a {@code value_info}
 * with that rank (dimensions left unknown) and its element type.
 *
 * <p>Why: exporters compute Reshape targets at run time (torch.onnx writes a channel shuffle as Shape → Gather →
 * Concat → Reshape for a dynamic batch; paddle2onnx does the same), and shape inference gives such a Reshape's
 * output no rank; nor does it to anything after it. ONNX Runtime's NHWC transformer converts a QLinearConv to its
 * channels-last integer kernel only when it knows the input's rank; the others run the NCHW QLinearConv, which
 * converts layouts on every call. On the zoo's ShuffleNet (a Reshape at each of its 6 channel shuffles) 20 of 26
 * QLinearConvs stayed NCHW and the QDQ model ran at 0.22× FP32; declared, all 26 run channels-last (0.36×, one
 * interleaved run; README, Export profiles).
 *
 * <p>Only what the operators' definitions imply is declared: a Conv's input has its weight's rank; QuantizeLinear,
 * DequantizeLinear, Slice, Pad, Concat (every input), pooling, normalization and elementwise unary operators keep
 * their first input's rank. A group of tensors tied that way whose known ranks disagree (it cannot happen in a valid
 * model) is left alone, as is every tensor the model already declares or whose element type is not evident.
 */
final class RankHints {

    /** Operators whose output 0 has the rank of input 0 (Concat: of every input), and the same element type. */
    private static final Set<String> SAME_RANK_AND_TYPE = Set.of("Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid",
            "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "Neg", "Abs", "Sqrt", "Exp",
            "Erf", "Identity", "Slice", "Pad", "Concat", "MaxPool", "AveragePool", "LpPool", "BatchNormalization",
            "InstanceNormalization", "LRN", "Softmax", "LogSoftmax", "Dropout", "Resize", "Conv", "ConvTranspose");

    private RankHints() {}

    /** {@code m} with the rank declarations added; the same model when there is nothing to declare. */
    static OnnxModel declare(OnnxModel m) {
        Analysis a = analyse(m);
        // only the groups that a Reshape with a run-time target feeds: elsewhere shape inference finds the ranks
        Set<String> hinted = new java.util.HashSet<>();
        for (String t : a.opaque) if (a.parent.containsKey(t)) hinted.add(find(a.parent, t));
        List<ValueInfoProto> added = new ArrayList<>();
        for (String t : List.copyOf(a.parent.keySet())) {
            if (!hinted.contains(find(a.parent, t))) continue;
            Integer r = a.groupRank.get(find(a.parent, t));
            Integer type = a.types.get(t);
            if (r == null || r < 0 || type == null || a.ranks.containsKey(t) || m.isInitializer(t)) continue;
            added.add(value(t, type, r));
        }
        if (added.isEmpty()) return m;
        added.sort(java.util.Comparator.comparing(ValueInfoProto::getName));
        return m.withGraph(m.graph().toBuilder().addAllValueInfo(added).build());
    }

    /**
     * The ranks of {@code m}'s tensors: a tensor's rank as the model declares it (graph input or output, value_info,
     * initializer) or as a chain of rank-preserving operators ties it to a Conv's input or to a declared tensor;
     * null when neither fixes it, or when what fixes it disagrees.
     */
    static java.util.function.Function<String, Integer> ranks(OnnxModel m) {
        Analysis a = analyse(m);
        return tensor -> {
            if (a.ranks.containsKey(tensor)) return a.ranks.get(tensor);
            if (!a.parent.containsKey(tensor)) return null;
            Integer r = a.groupRank.get(find(a.parent, tensor));
            return r == null || r < 0 ? null : r;
        };
    }

    /**
     * {@link #ranks}, and where that knows nothing, the rank the producer gives: its input's for a rank-keeping operator
     * (those of {@link #SAME_RANK_AND_TYPE}, QuantizeLinear, DequantizeLinear, GlobalAveragePool, GlobalMaxPool), its
     * weight's for a Conv, the larger of its inputs' for a broadcasting Add, Sub, Mul or Div, numpy's rule for a MatMul;
     * null when unknown. Used to read ranks, not declared: ranks after a broadcast are never declared into a model.
     */
    static java.util.function.Function<String, Integer> ranksThroughProducers(OnnxModel m) {
        java.util.function.Function<String, Integer> declared = ranks(m);
        Map<String, Integer> known = new HashMap<>();
        return new java.util.function.Function<>() {
            @Override
            public Integer apply(String t) {
                return rank(t, 0);
            }

            private Integer rank(String t, int depth) {
                Integer r = m.isInitializer(t) ? Integer.valueOf(m.shape(t).length) : declared.apply(t);
                if (r != null || depth > 256) return r;
                if (known.containsKey(t)) return known.get(t);
                NodeProto n = m.producer(t);
                if (n != null && n.getInputCount() > 0 && !n.getInput(0).isEmpty()) {
                    String op = n.getOpType();
                    if (op.equals("Conv") && n.getInputCount() > 1) r = weightRank(m, n.getInput(1));
                    else if (SAME_RANK_AND_TYPE.contains(op) || Set.of("QuantizeLinear", "DequantizeLinear",
                            "GlobalAveragePool", "GlobalMaxPool").contains(op)) r = rank(n.getInput(0), depth + 1);
                    else if (Set.of("Add", "Sub", "Mul", "Div").contains(op) && n.getInputCount() == 2) {
                        Integer a = rank(n.getInput(0), depth + 1), b = rank(n.getInput(1), depth + 1);
                        r = a == null || b == null ? null : Math.max(a, b);
                    } else if (op.equals("MatMul") && n.getInputCount() == 2) {
                        // numpy's matmul: the broadcast batch axes and the matrix's two; a 1-D operand loses its axis
                        Integer a = rank(n.getInput(0), depth + 1), b = rank(n.getInput(1), depth + 1);
                        if (a != null && b != null && a >= 1 && b >= 1) r = a == 1 && b == 1 ? 0 : a == 1 ? b - 1 : b == 1 ? a - 1 : Math.max(a, b);
                    }
                }
                known.put(t, r);
                return r;
            }
        };
    }

    /** Declared ranks and types, the groups of tensors tied by rank-preserving operators, and each group's rank. */
    private record Analysis(Map<String, Integer> types, Map<String, Integer> ranks, Map<String, String> parent,
                            Map<String, Integer> groupRank, List<String> opaque) {}

    private static Analysis analyse(OnnxModel m) {
        GraphProto g = m.graph();
        Map<String, Integer> types = new HashMap<>();
        Map<String, Integer> ranks = new HashMap<>();
        for (ValueInfoProto v : g.getInputList()) known(v, types, ranks);
        for (ValueInfoProto v : g.getOutputList()) known(v, types, ranks);
        for (ValueInfoProto v : g.getValueInfoList()) known(v, types, ranks);
        for (TensorProto t : g.getInitializerList()) {
            types.put(t.getName(), t.getDataType());
            ranks.put(t.getName(), t.getDimsCount());
        }
        Map<String, String> parent = new HashMap<>();
        Map<String, Integer> convRank = new LinkedHashMap<>();
        List<String> opaque = new ArrayList<>();
        for (NodeProto n : g.getNodeList()) {
            if (!Nodes.defaultDomain(n.getDomain()) || n.getOutputCount() == 0 || n.getOutput(0).isEmpty()) continue;
            String op = n.getOpType(), out = n.getOutput(0);
            if (op.equals("Reshape") && n.getInputCount() > 1 && !m.isInitializer(n.getInput(1))
                    && !(m.producer(n.getInput(1)) != null && m.producer(n.getInput(1)).getOpType().equals("Constant"))) {
                opaque.add(out);
                if (n.getInputCount() > 0 && types.containsKey(n.getInput(0))) types.putIfAbsent(out, types.get(n.getInput(0)));
            }
            String in = n.getInputCount() > 0 ? n.getInput(0) : "";
            if (in.isEmpty()) continue;
            switch (op) {
                case "QuantizeLinear" -> {
                    String zp = Nodes.input(n, 2);
                    types.putIfAbsent(out, zp == null ? TensorProto.DataType.UINT8_VALUE
                            : types.getOrDefault(zp, TensorProto.DataType.UINT8_VALUE));
                    types.putIfAbsent(in, TensorProto.DataType.FLOAT_VALUE);
                    union(parent, in, out);
                }
                case "DequantizeLinear" -> {
                    Integer scale = n.getInputCount() > 1 ? types.get(n.getInput(1)) : null;
                    if (scale != null) types.putIfAbsent(out, scale);
                    union(parent, in, out);
                }
                default -> {
                    if (!SAME_RANK_AND_TYPE.contains(op)) continue;
                    if (types.containsKey(in)) types.putIfAbsent(out, types.get(in));
                    if (op.equals("Concat")) {
                        for (String i : n.getInputList()) if (!i.isEmpty()) union(parent, i, out);
                    } else {
                        union(parent, in, out);
                    }
                    if ((op.equals("Conv") || op.equals("ConvTranspose")) && n.getInputCount() > 1) {
                        Integer r = weightRank(m, n.getInput(1));
                        if (r != null) convRank.merge(in, r, (a, b) -> a.equals(b) ? a : -1);
                    }
                }
            }
        }
        // each group's rank: its Conv inputs' and its declared tensors'; -1 where they disagree
        Map<String, Integer> groupRank = new HashMap<>();
        for (var e : convRank.entrySet()) merge(groupRank, find(parent, e.getKey()), e.getValue());
        for (String t : List.copyOf(parent.keySet())) {
            if (ranks.containsKey(t)) merge(groupRank, find(parent, t), ranks.get(t));
        }
        return new Analysis(types, ranks, parent, groupRank, opaque);
    }

    /** A Conv weight's rank: an initializer's, or that of the integer initializer its DequantizeLinear reads. */
    private static Integer weightRank(OnnxModel m, String w) {
        if (m.isInitializer(w)) return m.shape(w).length;
        NodeProto p = m.producer(w);
        if (p != null && p.getOpType().equals("DequantizeLinear") && m.isInitializer(p.getInput(0))) {
            return m.shape(p.getInput(0)).length;
        }
        return null;
    }

    private static void known(ValueInfoProto v, Map<String, Integer> types, Map<String, Integer> ranks) {
        if (!v.getType().hasTensorType()) return;
        TypeProto.Tensor t = v.getType().getTensorType();
        if (t.getElemType() != 0) types.put(v.getName(), t.getElemType());
        if (t.hasShape()) ranks.put(v.getName(), t.getShape().getDimCount());
    }

    private static ValueInfoProto value(String name, int type, int rank) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        for (int i = 0; i < rank; i++) s.addDim(TensorShapeProto.Dimension.newBuilder());
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(type).setShape(s))).build();
    }

    private static void merge(Map<String, Integer> groupRank, String root, int r) {
        groupRank.merge(root, r, (a, b) -> a.equals(b) ? a : -1);
    }

    private static String find(Map<String, String> parent, String t) {
        String r = t;
        while (true) {
            String p = parent.getOrDefault(r, r);
            if (p.equals(r)) break;
            r = p;
        }
        parent.putIfAbsent(t, t);
        if (!r.equals(t)) parent.put(t, r);
        return r;
    }

    private static void union(Map<String, String> parent, String a, String b) {
        String ra = find(parent, a), rb = find(parent, b);
        if (!ra.equals(rb)) parent.put(ra, rb);
    }
}
