package io.quantcal.kernels.onnx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorProto.DataType;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.shade.protobuf.ByteString;

/**
 * A model that computes in float16 (onnxconverter-common's {@code convert_float_to_float16}: float16 weights, the
 * float32 input cast to float16 and the outputs cast back; @imgly/background-removal's ISNet, many models exported for
 * GPUs and browsers) or in bfloat16, as the float32 model it stands for: every float16 or bfloat16 initializer, constant
 * and tensor attribute becomes float32, every Cast (and {@code dtype}) to them a Cast to float32, every such input,
 * output and declared value float32, in subgraphs too. Exact for the values (every float16 and bfloat16 is a float32);
 * the arithmetic is then float32's, which is what quantcal quantizes from and what evaluate compares against. A model
 * without either type is returned as it is.
 */
public final class Float16Upcast {

    private Float16Upcast() {}

    /** What was raised: initializers and constants, Cast (and dtype) targets, declared inputs/outputs/values. */
    public record Result(OnnxModel model, int tensors, int casts, int values) {
        public boolean changed() {
            return tensors + casts + values > 0;
        }
    }

    public static Result rewrite(OnnxModel m) {
        int[] counts = new int[3];
        GraphProto g = graph(m.graph(), counts);
        if (counts[0] + counts[1] + counts[2] == 0) return new Result(m, 0, 0, 0);
        return new Result(m.withGraph(g), counts[0], counts[1], counts[2]);
    }

    private static GraphProto graph(GraphProto g, int[] counts) {
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getInitializerCount(); i++) {
            TensorProto t = b.getInitializer(i);
            if (half(t.getDataType())) {
                b.setInitializer(i, toFloat(t));
                counts[0]++;
            }
        }
        for (int i = 0; i < b.getNodeCount(); i++) b.setNode(i, node(b.getNode(i), counts));
        for (int i = 0; i < b.getInputCount(); i++) b.setInput(i, value(b.getInput(i), counts));
        for (int i = 0; i < b.getOutputCount(); i++) b.setOutput(i, value(b.getOutput(i), counts));
        for (int i = 0; i < b.getValueInfoCount(); i++) b.setValueInfo(i, value(b.getValueInfo(i), counts));
        return b.build();
    }

    private static NodeProto node(NodeProto n, int[] counts) {
        NodeProto.Builder b = null;
        for (int i = 0; i < n.getAttributeCount(); i++) {
            AttributeProto a = n.getAttribute(i);
            AttributeProto.Builder ab = null;
            // Cast's target, and the dtype of the ops that make a tensor of a given type (EyeLike, Random*)
            boolean typeAttr = (a.getName().equals("to") && n.getOpType().equals("Cast")) || a.getName().equals("dtype");
            if (typeAttr && a.getType() == AttributeProto.AttributeType.INT && half((int) a.getI())) {
                ab = a.toBuilder().setI(DataType.FLOAT_VALUE);
                counts[1]++;
            } else if (a.hasT() && half(a.getT().getDataType())) {
                ab = a.toBuilder().setT(toFloat(a.getT()));
                counts[0]++;
            } else if (a.hasG() || a.getGraphsCount() > 0) {
                ab = Subgraphs.mapGraphs(a, g -> graph(g, counts)).toBuilder();
            }
            if (ab != null) {
                if (b == null) b = n.toBuilder();
                b.setAttribute(i, ab);
            }
        }
        return b == null ? n : b.build();
    }

    private static ValueInfoProto value(ValueInfoProto v, int[] counts) {
        if (!v.hasType() || !v.getType().hasTensorType()
                || !half(v.getType().getTensorType().getElemType())) {
            return v;
        }
        counts[2]++;
        TypeProto.Tensor.Builder t = v.getType().getTensorType().toBuilder().setElemType(DataType.FLOAT_VALUE);
        return v.toBuilder().setType(v.getType().toBuilder().setTensorType(t)).build();
    }

    /** float16 or bfloat16. */
    static boolean half(int type) {
        return type == DataType.FLOAT16_VALUE || type == DataType.BFLOAT16_VALUE;
    }

    /** A FLOAT16 or BFLOAT16 tensor as the FLOAT tensor of the same values (raw little-endian data). */
    static TensorProto toFloat(TensorProto t) {
        int n = (int) Tensors.count(Tensors.dims(t));
        boolean brain = t.getDataType() == DataType.BFLOAT16_VALUE;
        ByteBuffer out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        if (!t.getRawData().isEmpty()) {
            if (t.getRawData().size() != 2 * n) {
                throw new ModelException("tensor " + t.getName() + ": " + t.getRawData().size() + " bytes of raw 16-bit float"
                        + " data for " + n + " elements");
            }
            ByteBuffer in = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) out.putFloat(value(in.getShort(), brain));
        } else {
            // int32_data holds each value's 16 bits
            if (t.getInt32DataCount() != n) {
                throw new ModelException("tensor " + t.getName() + ": " + t.getInt32DataCount() + " int32_data values for "
                        + n + " 16-bit float elements");
            }
            for (int i = 0; i < n; i++) out.putFloat(value((short) t.getInt32Data(i), brain));
        }
        return t.toBuilder().setDataType(DataType.FLOAT_VALUE).clearInt32Data().setRawData(ByteString.copyFrom(out.array()))
                .build();
    }

    /** A bfloat16 or (binary16) float16 value's bits as the float32 of the same value. */
    private static float value(short bits, boolean bfloat) {
        return bfloat ? bfloatToFloat(bits) : ConstantFolder.halfToFloat(bits);
    }

    /** bfloat16 → binary32: its 16 bits are the float's upper half, exactly. */
    static float bfloatToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }
}
