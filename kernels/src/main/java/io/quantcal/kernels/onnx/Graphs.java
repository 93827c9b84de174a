package io.quantcal.kernels.onnx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Small builders for ONNX protobuf pieces: initializers, nodes with attributes, value infos and whole
 * models. Used by the rewriting code (BN folding, QDQ export) and by tests that build single-node models
 * to run in ONNX Runtime as the reference.
 */
public final class Graphs {

    /** The ONNX IR version quantcal writes; the bundled protobuf schema reads up to 8. */
    public static final long IR_VERSION = 8;

    private Graphs() {}

    public static TensorProto floatTensor(String name, float[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : data) b.putFloat(v);
        return raw(name, TensorProto.DataType.FLOAT, b, dims);
    }

    public static TensorProto int8Tensor(String name, int[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(data.length);
        for (int v : data) b.put((byte) v);
        return raw(name, TensorProto.DataType.INT8, b, dims);
    }

    public static TensorProto uint8Tensor(String name, int[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(data.length);
        for (int v : data) b.put((byte) (v & 0xff));
        return raw(name, TensorProto.DataType.UINT8, b, dims);
    }

    public static TensorProto int16Tensor(String name, int[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(2 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : data) b.putShort((short) v);
        return raw(name, TensorProto.DataType.INT16, b, dims);
    }

    public static TensorProto uint16Tensor(String name, int[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(2 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : data) b.putShort((short) (v & 0xffff));
        return raw(name, TensorProto.DataType.UINT16, b, dims);
    }

    public static TensorProto int32Tensor(String name, int[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : data) b.putInt(v);
        return raw(name, TensorProto.DataType.INT32, b, dims);
    }

    public static TensorProto int64Tensor(String name, long[] data, long... dims) {
        checkSize(name, data.length, dims);
        ByteBuffer b = ByteBuffer.allocate(8 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : data) b.putLong(v);
        return raw(name, TensorProto.DataType.INT64, b, dims);
    }

    private static TensorProto raw(String name, TensorProto.DataType type, ByteBuffer bytes, long[] dims) {
        bytes.flip();
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(type.getNumber())
                .setRawData(ByteString.copyFrom(bytes));
        for (long d : dims) t.addDims(d);
        return t.build();
    }

    private static void checkSize(String name, int length, long[] dims) {
        long n = 1;
        for (long d : dims) n *= d;
        if (n != length) {
            throw new IllegalArgumentException("tensor " + name + ": " + length + " values for shape "
                    + java.util.Arrays.toString(dims));
        }
    }

    /**
     * A node. Attribute values may be Long/Integer (INT), Double/Float (FLOAT), String (STRING),
     * long[]/int[] (INTS), float[] (FLOATS), TensorProto (TENSOR) or GraphProto (GRAPH: If's branches, Loop's body).
     */
    public static NodeProto node(String opType, String name, List<String> inputs, List<String> outputs,
                                 Map<String, Object> attributes) {
        NodeProto.Builder n = NodeProto.newBuilder().setOpType(opType).setName(name)
                .addAllInput(inputs).addAllOutput(outputs);
        attributes.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> n.addAttribute(attribute(e.getKey(), e.getValue())));
        return n.build();
    }

    public static NodeProto node(String opType, String name, List<String> inputs, List<String> outputs) {
        return node(opType, name, inputs, outputs, Map.of());
    }

    public static AttributeProto attribute(String name, Object value) {
        AttributeProto.Builder a = AttributeProto.newBuilder().setName(name);
        if (value instanceof Long || value instanceof Integer) {
            a.setType(AttributeProto.AttributeType.INT).setI(((Number) value).longValue());
        } else if (value instanceof Double || value instanceof Float) {
            a.setType(AttributeProto.AttributeType.FLOAT).setF(((Number) value).floatValue());
        } else if (value instanceof String s) {
            a.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(s));
        } else if (value instanceof long[] ls) {
            a.setType(AttributeProto.AttributeType.INTS);
            for (long v : ls) a.addInts(v);
        } else if (value instanceof int[] is) {
            a.setType(AttributeProto.AttributeType.INTS);
            for (int v : is) a.addInts(v);
        } else if (value instanceof float[] fs) {
            a.setType(AttributeProto.AttributeType.FLOATS);
            for (float v : fs) a.addFloats(v);
        } else if (value instanceof TensorProto t) {
            a.setType(AttributeProto.AttributeType.TENSOR).setT(t);
        } else if (value instanceof GraphProto g) {
            a.setType(AttributeProto.AttributeType.GRAPH).setG(g);
        } else {
            throw new IllegalArgumentException("attribute " + name + ": unsupported value type " + value.getClass());
        }
        return a.build();
    }

    /** A float tensor value info; a dimension of -1 (or less) is symbolic ("N"). */
    public static ValueInfoProto floatValue(String name, long... dims) {
        return value(name, TensorProto.DataType.FLOAT, dims);
    }

    public static ValueInfoProto value(String name, TensorProto.DataType elemType, long... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (long d : dims) {
            shape.addDim(d < 0 ? TensorShapeProto.Dimension.newBuilder().setDimParam("N")
                    : TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        TypeProto type = TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
                .setElemType(elemType.getNumber()).setShape(shape)).build();
        return ValueInfoProto.newBuilder().setName(name).setType(type).build();
    }

    /** A tensor value info with an element type but no shape (rank unknown): for added graph outputs. */
    public static ValueInfoProto valueOfAnyShape(String name, TensorProto.DataType elemType) {
        TypeProto type = TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
                .setElemType(elemType.getNumber())).build();
        return ValueInfoProto.newBuilder().setName(name).setType(type).build();
    }

    /**
     * An integer tensor of the given type (INT8, UINT8, INT16, UINT16, INT32), the values already in
     * the type's range.
     */
    public static TensorProto intTensor(String name, TensorProto.DataType type, int[] data, long... dims) {
        return switch (type) {
            case INT8 -> int8Tensor(name, data, dims);
            case UINT8 -> uint8Tensor(name, data, dims);
            case INT16 -> int16Tensor(name, data, dims);
            case UINT16 -> uint16Tensor(name, data, dims);
            case INT32 -> int32Tensor(name, data, dims);
            default -> throw new IllegalArgumentException("tensor " + name + ": " + type + " is not a supported integer type");
        };
    }

    /** A model with a single default-domain opset import. */
    public static ModelProto model(long opset, List<NodeProto> nodes, List<TensorProto> initializers,
                                   List<ValueInfoProto> inputs, List<ValueInfoProto> outputs) {
        GraphProto graph = GraphProto.newBuilder().setName("graph").addAllNode(nodes)
                .addAllInitializer(initializers).addAllInput(inputs).addAllOutput(outputs).build();
        return ModelProto.newBuilder().setIrVersion(IR_VERSION).setProducerName("quantcal")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .setGraph(graph).build();
    }
}
