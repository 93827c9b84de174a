package io.quantcal.kernels.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import java.io.Serializable;
import java.lang.reflect.Array;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * A named tensor fed to a model input, of any {@link ElementType}, row-major: {@code data} is a float[], double[],
 * long[], int[] or byte[] (uint8, the bytes' unsigned values) matching {@code type}. Like {@link FloatTensor}, the data array is not copied.
 */
public record InputTensor(String name, ElementType type, long[] shape, Object data) implements Serializable {

    public InputTensor {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "element type of tensor " + name);
        Objects.requireNonNull(data, "data of tensor " + name);
        shape = shape.clone();
        if (data.getClass() != type.arrayClass()) {
            throw new IllegalArgumentException("tensor " + name + ": " + type + " data must be a "
                    + type.arrayClass().getSimpleName() + ", got " + data.getClass().getSimpleName());
        }
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
            n *= d;
        }
        if (n != Array.getLength(data)) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds " + n
                    + " values, data has " + Array.getLength(data));
        }
    }

    public static InputTensor of(FloatTensor t) {
        return new InputTensor(t.name(), ElementType.FLOAT, t.shape(), t.data());
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** An ONNX Runtime tensor over a copy of the data (the caller closes it). */
    OnnxTensor toOnnx(OrtEnvironment env) throws OrtException {
        return switch (type) {
            case FLOAT -> OnnxTensor.createTensor(env, FloatBuffer.wrap((float[]) data), shape);
            case DOUBLE -> OnnxTensor.createTensor(env, DoubleBuffer.wrap((double[]) data), shape);
            case INT64 -> OnnxTensor.createTensor(env, LongBuffer.wrap((long[]) data), shape);
            case INT32 -> OnnxTensor.createTensor(env, IntBuffer.wrap((int[]) data), shape);
            case UINT8 -> OnnxTensor.createTensor(env, java.nio.ByteBuffer.wrap((byte[]) data), shape, OnnxJavaType.UINT8);
        };
    }

    /** Bytes of the data. */
    public long bytes() {
        return (long) Array.getLength(data) * type.bytes();
    }

    /** ONNX Runtime's name for the element type. */
    OnnxJavaType onnxJavaType() {
        return switch (type) {
            case FLOAT -> OnnxJavaType.FLOAT;
            case DOUBLE -> OnnxJavaType.DOUBLE;
            case INT64 -> OnnxJavaType.INT64;
            case INT32 -> OnnxJavaType.INT32;
            case UINT8 -> OnnxJavaType.UINT8;
        };
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof InputTensor t && name.equals(t.name) && type == t.type && Arrays.equals(shape, t.shape)
                && Arrays.deepEquals(new Object[] {data}, new Object[] {t.data});
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + Arrays.hashCode(shape)) + Arrays.deepHashCode(new Object[] {data});
    }

    @Override
    public String toString() {
        return "InputTensor[" + name + " " + type + " " + Arrays.toString(shape) + "]";
    }
}
