package io.quantcal.kernels.runtime;

import java.util.Locale;
import onnx.Onnx.TensorProto;

/**
 * The element types quantcal feeds to model inputs: float tensors (images, features, embeddings given as values)
 * and integer tensors (token ids, attention masks, positions). Integer inputs are data, never activations: nothing
 * quantcal quantizes reads them directly (Conv, Gemm and MatMul take float activations).
 */
public enum ElementType {
    FLOAT(TensorProto.DataType.FLOAT_VALUE, "float32"),
    DOUBLE(TensorProto.DataType.DOUBLE_VALUE, "float64"),
    INT64(TensorProto.DataType.INT64_VALUE, "int64"),
    INT32(TensorProto.DataType.INT32_VALUE, "int32"),
    /** 8-bit pixels (an image model that normalises its uint8 input itself) or other byte data. */
    UINT8(TensorProto.DataType.UINT8_VALUE, "uint8");

    private final int onnx;
    private final String display;

    ElementType(int onnx, String display) {
        this.onnx = onnx;
        this.display = display;
    }

    /** The TensorProto.DataType number. */
    public int onnx() {
        return onnx;
    }

    public boolean isInteger() {
        return this == INT64 || this == INT32 || this == UINT8;
    }

    /** The element type of ONNX type number {@code dataType}, or null when quantcal cannot feed it. */
    public static ElementType ofOnnx(int dataType) {
        for (ElementType t : values()) if (t.onnx == dataType) return t;
        return null;
    }

    /** "float32", "int64", ... for any ONNX type number ("bool", "float16", "uint8"). */
    public static String onnxName(int dataType) {
        ElementType t = ofOnnx(dataType);
        if (t != null) return t.display;
        return io.quantcal.kernels.onnx.Tensors.typeName(dataType).toLowerCase(Locale.ROOT);
    }

    /** Bytes per element. */
    public int bytes() {
        return this == UINT8 ? 1 : this == FLOAT || this == INT32 ? 4 : 8;
    }

    /** The Java array one sample of this type is held in. */
    public Class<?> arrayClass() {
        return switch (this) {
            case FLOAT -> float[].class;
            case DOUBLE -> double[].class;
            case INT64 -> long[].class;
            case INT32 -> int[].class;
            case UINT8 -> byte[].class;
        };
    }

    @Override
    public String toString() {
        return display;
    }
}
