package io.quantcal.kernels.onnx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import onnx.Onnx.GraphProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Inputs a deployment always feeds with one value (Silero VAD's sample rate, a flag, a fixed scale): each becomes an
 * initializer of that value in the input's element type and shape, and an input no more, so that what the graph
 * computes from it alone is constant (an If on it runs one branch, {@link IfInlining}). The exported models are made
 * for that value and no longer take the input.
 */
public final class InputValues {

    private InputValues() {}

    /**
     * {@code m} with its input {@code name} replaced by a constant of {@code values} (row-major).
     *
     * @throws IllegalArgumentException naming the input and what was expected: no such input, a value count or an
     *     element type it cannot hold (a fraction for an integer input, a value out of the type's range)
     */
    public static OnnxModel fix(OnnxModel m, String name, double[] values) {
        TensorInfo info = m.inputs().stream().filter(i -> i.name().equals(name)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("the model has no input " + name + "; its inputs are "
                        + m.inputs().stream().map(TensorInfo::name).toList()));
        GraphProto.Builder g = m.graph().toBuilder().clearInput();
        for (ValueInfoProto v : m.graph().getInputList()) if (!v.getName().equals(name)) g.addInput(v);
        return m.withGraph(g.addInitializer(tensor(info, values)).build());
    }

    private static TensorProto tensor(TensorInfo in, double[] x) {
        long[] shape = in.shape();
        String what = "input " + in.name();
        if (shape == null) {
            shape = x.length == 1 ? new long[0] : new long[] {x.length};
        } else if (shape.length == 1 && shape[0] < 0) {
            shape = new long[] {x.length};
        } else {
            long count = 1;
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException(what + " has shape " + Arrays.toString(shape)
                            + " with an open dimension: a fixed value needs a shape of known size (or rank 0 or 1)");
                }
                count *= d;
            }
            if (count != x.length) {
                throw new IllegalArgumentException(what + " has shape " + Arrays.toString(shape) + " (" + count
                        + " value" + (count == 1 ? "" : "s") + "), " + x.length + " given");
            }
        }
        TensorProto.DataType type = TensorProto.DataType.forNumber(in.elementType());
        if (type == null) throw new IllegalArgumentException(what + " has element type " + in.elementType());
        ByteBuffer b;
        switch (type) {
            case FLOAT -> {
                b = buffer(4 * x.length);
                for (double v : x) b.putFloat((float) v);
            }
            case DOUBLE -> {
                b = buffer(8 * x.length);
                for (double v : x) b.putDouble(v);
            }
            case INT64 -> {
                b = buffer(8 * x.length);
                for (double v : x) b.putLong((long) integral(what, type, v, -0x1p63, 0x1p63 - 1024));
            }
            case INT32 -> {
                b = buffer(4 * x.length);
                for (double v : x) b.putInt((int) integral(what, type, v, Integer.MIN_VALUE, Integer.MAX_VALUE));
            }
            case INT16, UINT16 -> {
                b = buffer(2 * x.length);
                boolean u = type == TensorProto.DataType.UINT16;
                for (double v : x) b.putShort((short) integral(what, type, v, u ? 0 : Short.MIN_VALUE, u ? 65535 : Short.MAX_VALUE));
            }
            case INT8, UINT8, BOOL -> {
                b = buffer(x.length);
                double lo = type == TensorProto.DataType.INT8 ? -128 : 0;
                double hi = type == TensorProto.DataType.INT8 ? 127 : type == TensorProto.DataType.UINT8 ? 255 : 1;
                for (double v : x) b.put((byte) integral(what, type, v, lo, hi));
            }
            default -> throw new IllegalArgumentException(what + " is " + type + ": a fixed value can be given for float,"
                    + " double, integer and bool inputs");
        }
        TensorProto.Builder t = TensorProto.newBuilder().setName(in.name()).setDataType(type.getNumber())
                .setRawData(ByteString.copyFrom(b.array()));
        for (long d : shape) t.addDims(d);
        return t.build();
    }

    private static ByteBuffer buffer(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static double integral(String what, TensorProto.DataType type, double v, double lo, double hi) {
        if (v != Math.rint(v) || v < lo || v > hi) {
            throw new IllegalArgumentException(what + " is " + type + ": " + v + " is not one of its values");
        }
        return v;
    }
}
