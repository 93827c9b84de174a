package io.quantcal.kernels.onnx;

import org.nd4j.shade.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorProto.DataType;

/**
 * Constant folding on the driver, for the weights and biases that real exporters do not write as plain
 * initializers: torch.onnx puts an {@code Identity} between a deduplicated parameter and its second user,
 * paddle2onnx writes every weight as a {@code Constant} node, and many exporters reshape, transpose, cast or
 * (un)squeeze an initializer in the graph. Every node of those kinds whose inputs are all constant becomes an
 * initializer named after its output, repeatedly, so a weight that reaches a Conv/Gemm/MatMul through such a chain is
 * an initializer again. The values are moved, not recomputed (reshape-like ops keep the bytes, Transpose permutes
 * them, Cast converts each element), so the folded model computes exactly what the original does.
 *
 * <p>Then every weight (and bias) initializer read by more than one quantizable node is copied once per node: each
 * node's parameters (scales, AdaRound codes, bias correction) may differ, and each gets its own quantized copy.
 */
public final class ConstantFolder {

    private ConstantFolder() {}

    /** What folding did: nodes replaced by initializers, and weights copied for their extra consumers. */
    public record Result(OnnxModel model, int foldedNodes, Map<String, Integer> foldedByOp, List<String> unshared,
            List<String> evaluated, Map<String, Integer> evaluatedByOp, List<String> initializerInputs) {}

    static final Set<String> FOLDABLE = Set.of("Identity", "Constant", "Cast", "Reshape", "Unsqueeze", "Squeeze",
            "Transpose", "Flatten");

    public static Result fold(OnnxModel m) {
        GraphProto g = m.graph();
        GraphEditor edit = new GraphEditor(g);
        Map<String, TensorProto> consts = new LinkedHashMap<>();
        for (TensorProto t : g.getInitializerList()) consts.put(t.getName(), t);
        Set<String> graphOutputs = new HashSet<>();
        for (var o : g.getOutputList()) graphOutputs.add(o.getName());
        Map<String, Integer> byOp = new LinkedHashMap<>();
        Set<String> readOrMadeByFolded = new HashSet<>();
        int folded = 0;
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (!Nodes.defaultDomain(n.getDomain()) || !FOLDABLE.contains(n.getOpType()) || n.getOutputCount() != 1
                    || graphOutputs.contains(n.getOutput(0)) || !allConstant(n, consts)) {
                continue;
            }
            TensorProto out = evaluate(m, n, consts);
            if (out == null) continue;
            TensorProto t = out.toBuilder().setName(n.getOutput(0)).build();
            consts.put(t.getName(), t);
            edit.putInitializer(t);
            edit.remove(i);
            readOrMadeByFolded.addAll(n.getInputList());
            readOrMadeByFolded.add(t.getName());
            byOp.merge(n.getOpType(), 1, Integer::sum);
            folded++;
        }
        // weights computed from constants with arithmetic: evaluated by ONNX Runtime, as it folds them itself
        ConstantCones.Result cones = ConstantCones.evaluate(m, g, edit, consts);
        List<String> unshared = unshare(g, edit, consts);
        // initializers also listed as graph inputs (IR < 4 models, torch.onnx's keep_initializers_as_inputs): quantcal
        // reads them as the constants they hold, so they are inputs no more (ONNX Runtime would neither fold nor
        // pre-pack them, and warns about each one whenever it loads the model)
        List<String> initializerInputs = new ArrayList<>();
        for (var in : g.getInputList()) if (consts.containsKey(in.getName())) initializerInputs.add(in.getName());
        if (folded == 0 && unshared.isEmpty() && cones.tensors().isEmpty() && initializerInputs.isEmpty()) {
            return new Result(m, 0, byOp, List.of(), List.of(), Map.of(), List.of());
        }
        // constants that only folded nodes read go; an initializer the exporter left unused stays as it was
        edit.dropUnused(readOrMadeByFolded);
        GraphProto out = edit.build();
        if (!initializerInputs.isEmpty()) {
            Set<String> drop = new HashSet<>(initializerInputs);
            GraphProto.Builder b = out.toBuilder().clearInput();
            for (var in : out.getInputList()) if (!drop.contains(in.getName())) b.addInput(in);
            out = b.build();
        }
        return new Result(m.withGraph(out), folded, byOp, unshared, cones.tensors(), cones.byOp(), initializerInputs);
    }

    private static boolean allConstant(NodeProto n, Map<String, TensorProto> consts) {
        for (String i : n.getInputList()) if (!i.isEmpty() && !consts.containsKey(i)) return false;
        return true;
    }

    private static boolean isQuantizableOp(NodeProto n) {
        return Nodes.defaultDomain(n.getDomain()) && QuantizableNode.OP_TYPES.contains(n.getOpType());
    }

    /**
     * Gives each quantizable node its own copy of a weight or bias constant it shares with an earlier such node;
     * returns "original -> copy" for each copy made.
     */
    private static List<String> unshare(GraphProto g, GraphEditor edit, Map<String, TensorProto> consts) {
        Map<String, Integer> seen = new HashMap<>();
        List<String> unshared = new ArrayList<>();
        for (int k = 0; k < g.getNodeCount(); k++) {
            NodeProto n = edit.node(k);
            if (n == null || !isQuantizableOp(n)) continue;
            NodeProto.Builder nb = null;
            for (int i = 1; i < n.getInputCount(); i++) {
                String in = n.getInput(i);
                if (!consts.containsKey(in) || seen.merge(in, 1, Integer::sum) == 1) continue;
                String copy = edit.uniqueName(in + "__" + n.getName());
                edit.putInitializer(consts.get(in).toBuilder().setName(copy).build());
                if (nb == null) nb = n.toBuilder();
                nb.setInput(i, copy);
                unshared.add(in + " -> " + copy);
            }
            if (nb != null) edit.replace(k, nb.build());
        }
        return unshared;
    }

    /** The node's output as a constant, or null when it is not a form folded here (the node then stays). */
    private static TensorProto evaluate(OnnxModel m, NodeProto n, Map<String, TensorProto> consts) {
        String where = m.source() + ": " + Nodes.describe(n);
        switch (n.getOpType()) {
            case "Identity":
                return consts.get(n.getInput(0));
            case "Constant":
                return constant(n, where);
            case "Cast": {
                TensorProto x = consts.get(n.getInput(0));
                return cast(x, (int) Nodes.intAttr(n, "to", -1), where);
            }
            case "Reshape": {
                TensorProto x = consts.get(n.getInput(0));
                long[] shape = longs(consts.get(n.getInput(1)), where);
                boolean allowZero = Nodes.intAttr(n, "allowzero", 0) != 0;
                long[] in = Tensors.dims(x);
                long[] out = shape.clone();
                int minus = -1;
                long known = 1;
                for (int i = 0; i < out.length; i++) {
                    if (out[i] == 0 && !allowZero) out[i] = in[i];
                    if (out[i] == -1) minus = i; else known *= out[i];
                }
                if (minus >= 0) out[minus] = known == 0 ? 0 : Tensors.count(in) / known;
                return withDims(x, out, where);
            }
            case "Flatten": {
                TensorProto x = consts.get(n.getInput(0));
                long[] in = Tensors.dims(x);
                long axis = Nodes.intAttr(n, "axis", 1);
                if (axis < 0) axis += in.length;
                long a = 1;
                for (int i = 0; i < axis; i++) a *= in[i];
                return withDims(x, new long[] {a, Tensors.count(in) / Math.max(1, a)}, where);
            }
            case "Unsqueeze", "Squeeze": {
                TensorProto x = consts.get(n.getInput(0));
                long[] in = Tensors.dims(x);
                long[] axes = n.getInputCount() > 1 && !n.getInput(1).isEmpty() ? longs(consts.get(n.getInput(1)), where)
                        : Nodes.intsAttr(n, "axes");
                boolean unsq = n.getOpType().equals("Unsqueeze");
                List<Long> out = new ArrayList<>();
                if (unsq) {
                    int rank = in.length + axes.length;
                    boolean[] inserted = new boolean[rank];
                    for (long a : axes) inserted[(int) (a < 0 ? a + rank : a)] = true;
                    int j = 0;
                    for (int i = 0; i < rank; i++) out.add(inserted[i] ? 1L : in[j++]);
                } else {
                    boolean[] drop = new boolean[in.length];
                    if (axes == null) {
                        for (int i = 0; i < in.length; i++) drop[i] = in[i] == 1;
                    } else {
                        for (long a : axes) drop[(int) (a < 0 ? a + in.length : a)] = true;
                    }
                    for (int i = 0; i < in.length; i++) if (!drop[i]) out.add(in[i]);
                }
                return withDims(x, out.stream().mapToLong(Long::longValue).toArray(), where);
            }
            case "Transpose": {
                TensorProto x = consts.get(n.getInput(0));
                return transpose(x, Nodes.intsAttr(n, "perm"), where);
            }
            default:
                return null;
        }
    }

    private static TensorProto constant(NodeProto n, String where) {
        for (AttributeProto a : n.getAttributeList()) {
            switch (a.getName()) {
                case "value":
                    return a.getT();
                case "value_float":
                    return Graphs.floatTensor("c", new float[] {a.getF()});
                case "value_floats": {
                    float[] f = new float[a.getFloatsCount()];
                    for (int i = 0; i < f.length; i++) f[i] = a.getFloats(i);
                    return Graphs.floatTensor("c", f, f.length);
                }
                case "value_int":
                    return Graphs.int64Tensor("c", new long[] {a.getI()});
                case "value_ints": {
                    long[] l = new long[a.getIntsCount()];
                    for (int i = 0; i < l.length; i++) l[i] = a.getInts(i);
                    return Graphs.int64Tensor("c", l, l.length);
                }
                default:
                    // sparse_value, value_string(s): left to ONNX Runtime
                    return null;
            }
        }
        throw new ModelException(where + ": Constant has no value attribute");
    }

    /** Little-endian bytes of a fixed-width tensor, from raw_data or from its typed field. */
    static byte[] raw(TensorProto t, String where) {
        int type = t.getDataType();
        int size = Tensors.elementSize(type);
        if (size <= 0) throw new ModelException(where + ": cannot fold a " + Tensors.typeName(type) + " tensor");
        int n = (int) Tensors.count(Tensors.dims(t));
        if (!t.getRawData().isEmpty()) {
            if (t.getRawData().size() != (long) n * size) {
                throw new ModelException(where + ": " + t.getName() + " has " + t.getRawData().size() + " raw bytes for " + n
                        + " elements of " + Tensors.typeName(type));
            }
            return t.getRawData().toByteArray();
        }
        ByteBuffer b = ByteBuffer.allocate(n * size).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            switch (type) {
                case DataType.FLOAT_VALUE -> b.putFloat(t.getFloatData(i));
                case DataType.DOUBLE_VALUE -> b.putDouble(t.getDoubleData(i));
                case DataType.INT64_VALUE -> b.putLong(t.getInt64Data(i));
                case DataType.UINT64_VALUE -> b.putLong(t.getUint64Data(i));
                case DataType.UINT32_VALUE -> b.putInt((int) t.getUint64Data(i));
                case DataType.INT32_VALUE -> b.putInt(t.getInt32Data(i));
                case DataType.INT16_VALUE, DataType.UINT16_VALUE, DataType.FLOAT16_VALUE, DataType.BFLOAT16_VALUE ->
                        b.putShort((short) t.getInt32Data(i));
                case DataType.INT8_VALUE, DataType.UINT8_VALUE, DataType.BOOL_VALUE -> b.put((byte) t.getInt32Data(i));
                default -> throw new ModelException(where + ": cannot fold a " + Tensors.typeName(type) + " tensor");
            }
        }
        return b.array();
    }

    private static TensorProto withRaw(int type, long[] dims, byte[] bytes) {
        TensorProto.Builder b = TensorProto.newBuilder().setDataType(type).setRawData(ByteString.copyFrom(bytes));
        for (long d : dims) b.addDims(d);
        return b.build();
    }

    private static TensorProto withDims(TensorProto x, long[] dims, String where) {
        if (Tensors.count(dims) != Tensors.count(Tensors.dims(x))) {
            throw new ModelException(where + ": cannot give " + Arrays.toString(Tensors.dims(x)) + " the shape "
                    + Arrays.toString(dims));
        }
        return withRaw(x.getDataType(), dims, raw(x, where));
    }

    static long[] longs(TensorProto t, String where) {
        ByteBuffer b = ByteBuffer.wrap(raw(t, where)).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) Tensors.count(Tensors.dims(t));
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (t.getDataType()) {
                case DataType.INT64_VALUE -> b.getLong();
                case DataType.INT32_VALUE -> b.getInt();
                default -> throw new ModelException(where + ": expected an INT64 shape or axes, found "
                        + Tensors.typeName(t.getDataType()));
            };
        }
        return out;
    }

    private static TensorProto transpose(TensorProto x, long[] perm, String where) {
        long[] in = Tensors.dims(x);
        int r = in.length;
        if (perm == null) {
            perm = new long[r];
            for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        }
        long[] out = new long[r];
        for (int i = 0; i < r; i++) out[i] = in[(int) perm[i]];
        int size = Tensors.elementSize(x.getDataType());
        byte[] src = raw(x, where);
        byte[] dst = new byte[src.length];
        long[] inStride = new long[r];
        long s = 1;
        for (int i = r - 1; i >= 0; i--) {
            inStride[i] = s;
            s *= in[i];
        }
        int n = (int) Tensors.count(out);
        int[] idx = new int[r];
        for (int o = 0; o < n; o++) {
            long src0 = 0;
            for (int i = 0; i < r; i++) src0 += idx[i] * inStride[(int) perm[i]];
            System.arraycopy(src, (int) src0 * size, dst, o * size, size);
            for (int i = r - 1; i >= 0; i--) {
                if (++idx[i] < out[i]) break;
                idx[i] = 0;
            }
        }
        return withRaw(x.getDataType(), out, dst);
    }

    /** Cast between the numeric types weights and shapes use; other pairs are left to ONNX Runtime. */
    private static TensorProto cast(TensorProto x, int to, String where) {
        int from = x.getDataType();
        long[] dims = Tensors.dims(x);
        int n = (int) Tensors.count(dims);
        ByteBuffer in = ByteBuffer.wrap(raw(x, where)).order(ByteOrder.LITTLE_ENDIAN);
        int size = Tensors.elementSize(to);
        if (size <= 0 || to == DataType.BOOL_VALUE || to == DataType.BFLOAT16_VALUE || from == DataType.BFLOAT16_VALUE) {
            return null;
        }
        ByteBuffer out = ByteBuffer.allocate(n * size).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            double v = switch (from) {
                case DataType.FLOAT_VALUE -> in.getFloat();
                case DataType.DOUBLE_VALUE -> in.getDouble();
                case DataType.FLOAT16_VALUE -> halfToFloat(in.getShort());
                case DataType.INT64_VALUE -> in.getLong();
                case DataType.INT32_VALUE -> in.getInt();
                case DataType.INT16_VALUE -> in.getShort();
                case DataType.INT8_VALUE -> in.get();
                case DataType.UINT8_VALUE, DataType.BOOL_VALUE -> in.get() & 0xff;
                case DataType.UINT16_VALUE -> in.getShort() & 0xffff;
                default -> Double.NaN;
            };
            if (Double.isNaN(v) && from != DataType.FLOAT_VALUE && from != DataType.DOUBLE_VALUE
                    && from != DataType.FLOAT16_VALUE) {
                return null;
            }
            switch (to) {
                case DataType.FLOAT_VALUE -> out.putFloat((float) v);
                case DataType.DOUBLE_VALUE -> out.putDouble(v);
                case DataType.FLOAT16_VALUE -> out.putShort(floatToHalf((float) v));
                case DataType.INT64_VALUE -> out.putLong((long) v);
                case DataType.INT32_VALUE -> out.putInt((int) (long) v);
                case DataType.INT16_VALUE, DataType.UINT16_VALUE -> out.putShort((short) (long) v);
                case DataType.INT8_VALUE, DataType.UINT8_VALUE -> out.put((byte) (long) v);
                default -> {
                    return null;
                }
            }
        }
        return withRaw(to, dims, out.array());
    }

    /** IEEE 754 binary16 to float (exact). */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        if (exp == 0) {
            float v = mant * 0x1p-24f; // subnormal: mant * 2^-24
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** float to binary16, round half to even (as ONNX Runtime's Cast). */
    static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = (x >>> 23) & 0xff;
        int mant = x & 0x7fffff;
        if (exp == 0xff) return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
        int e = exp - 127 + 15;
        if (e >= 0x1f) return (short) (sign | 0x7c00);
        if (e <= 0) {
            if (e < -10) return (short) sign;
            mant |= 0x800000;
            int shift = 14 - e;
            int half = mant >>> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) != 0)) half++;
            return (short) (sign | half);
        }
        int half = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) half++;
        return (short) (sign | half);
    }
}
