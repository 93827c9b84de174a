package io.quantcal.kernels.onnx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The front end's Gemm scalars rule: Y = α·A·B + β·C with α ≠ 1 or β ≠ 1 (torch's {@code addmm(..., alpha=, beta=)},
 * older converters) becomes Y = A·(α·B) + (β·C), the Gemm quantcal quantizes, when B (and C) are float constants: the
 * scalars are multiplied into copies of those constants, rounded to float, and the attributes go. β = 0 drops C (ONNX:
 * C is then not used). The same function; the float results differ from ONNX Runtime's α·(A·B) by the rounding of the
 * scaled constants (bit for bit when α and β are powers of two; tested in ONNX Runtime). Gemms whose B or C is computed
 * at run time keep their scalars (and stay FP32 with the reason).
 *
 * <p>transA = 1 with a computed A (Y = Aᵀ·B + C, A [K, M]) becomes a Transpose of A (perm [1, 0]) read by a Gemm with
 * transA = 0: the same products (tested in ONNX Runtime), and a Gemm quantcal quantizes; the `ort` profile passes the
 * Transpose's input parameters through it (a shape-only op), so ONNX Runtime transposes uint8 codes. A constant A is
 * left as it is (its Gemm has no constant weight in B to quantize anyway).
 */
public final class GemmScalars {

    private GemmScalars() {}

    /**
     * The rewritten model, the Gemm nodes whose scalars went into their constants and those whose A is now
     * transposed by a node of its own, in graph order.
     */
    public record Result(OnnxModel model, List<String> rewritten, List<String> transposedA) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        List<String> originals = new ArrayList<>();
        List<String> transposed = new ArrayList<>();
        for (NodeProto n0 : m.nodes()) {
            if (!n0.getOpType().equals("Gemm") || !Nodes.defaultDomain(n0.getDomain())) continue;
            NodeProto n = n0;
            String a0 = Nodes.input(n, 0);
            if (Nodes.intAttr(n, "transA", 0) != 0 && a0 != null && !m.isInitializer(a0)) {
                if (e == null) e = new GraphEditor(m.graph());
                String aT = e.uniqueName(a0 + "_transposed");
                int at = e.position(n.getName());
                e.insertBefore(at, Graphs.node("Transpose", e.uniqueName(n.getName() + "_transA"), List.of(a0), List.of(aT),
                        java.util.Map.of("perm", new long[] {1, 0})));
                NodeProto.Builder tb = n.toBuilder().clearAttribute().setInput(0, aT);
                for (AttributeProto a : n.getAttributeList()) {
                    if (!a.getName().equals("transA")) tb.addAttribute(a);
                }
                n = tb.build();
                e.replace(e.position(n.getName()), n);
                transposed.add(n.getName());
            }
            double alpha = Nodes.floatAttr(n, "alpha", 1.0), beta = Nodes.floatAttr(n, "beta", 1.0);
            String b = Nodes.input(n, 1), c = Nodes.input(n, 2);
            boolean scaleB = alpha != 1.0, scaleC = c != null && beta != 1.0;
            if (!scaleB && !scaleC) continue;
            if (b == null || !floatConstant(m, b) || (scaleC && beta != 0.0 && !floatConstant(m, c))) continue;
            if (e == null) e = new GraphEditor(m.graph());
            NodeProto.Builder nb = n.toBuilder().clearAttribute();
            for (AttributeProto a : n.getAttributeList()) {
                if (!a.getName().equals("alpha") && !a.getName().equals("beta")) nb.addAttribute(a);
            }
            String newB = b, newC = c;
            if (scaleB) {
                newB = e.uniqueName(b + "_alpha");
                e.putInitializer(scaled(m.initializer(b), newB, (float) alpha));
            }
            if (scaleC) {
                if (beta == 0.0) {
                    newC = null;
                } else {
                    newC = e.uniqueName(c + "_beta");
                    e.putInitializer(scaled(m.initializer(c), newC, (float) beta));
                }
            }
            nb.clearInput().addInput(n.getInput(0)).addInput(newB);
            if (newC != null) nb.addInput(newC);
            e.replace(e.position(n.getName()), nb.build());
            done.add(n.getName());
            originals.add(b);
            if (c != null) originals.add(c);
        }
        if (e == null) return new Result(m, List.of(), List.of());
        // the original constants go where nothing else reads them
        e.dropUnused(originals);
        return new Result(m.withGraph(e.build()), done, transposed);
    }

    private static boolean floatConstant(OnnxModel m, String t) {
        return m.isInitializer(t) && m.initializer(t).getDataType() == TensorProto.DataType.FLOAT_VALUE;
    }

    /** {@code s · t} as a new float initializer {@code name}, each product rounded to float. */
    private static TensorProto scaled(TensorProto t, String name, float s) {
        float[] v = Tensors.floats(t, name);
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(s * x);
        return t.toBuilder().setName(name).clearFloatData().setRawData(org.nd4j.shade.protobuf.ByteString.copyFrom(b.array()))
                .build();
    }
}
