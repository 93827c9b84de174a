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
 */
public final class GemmScalars {

    private GemmScalars() {}

    /** The rewritten model and the Gemm nodes whose scalars went into their constants, in graph order. */
    public record Result(OnnxModel model, List<String> rewritten) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        List<String> originals = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("Gemm") || !Nodes.defaultDomain(n.getDomain())) continue;
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
        if (e == null) return new Result(m, List.of());
        // the original constants go where nothing else reads them
        e.dropUnused(originals);
        return new Result(m.withGraph(e.build()), done);
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
