package io.quantcal.kernels.onnx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorProto.DataType;

/** Decoding of initializer contents: raw_data (little-endian, the ONNX rule) or the typed repeated fields. */
public final class Tensors {

    private Tensors() {}

    static long[] dims(TensorProto t) {
        long[] d = new long[t.getDimsCount()];
        for (int i = 0; i < d.length; i++) d[i] = t.getDims(i);
        return d;
    }

    static long count(long[] dims) {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    /** A TensorProto data type's name ("FLOAT", "INT4": those added after IR 8 too), else "type N". */
    public static String typeName(int dataType) {
        DataType t = DataType.forNumber(dataType);
        if (t != null) return t.name();
        int later = dataType - FLOAT8E4M3FN;
        return later >= 0 && later < LATER_TYPES.length ? LATER_TYPES[later] : "type " + dataType;
    }

    /** TensorProto.DataType numbers from IR 9 on, which ND4J's IR-8 enum lacks: 17 is the first. */
    static final int FLOAT8E4M3FN = 17;

    /** Their names, from 17 (IR 9: float8; 10: 4-bit integers; 11: float4; 12: float8e8m0; 13: 2-bit integers). */
    private static final String[] LATER_TYPES = {"FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
            "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2"};

    /** Bytes per element of a fixed-width type, or -1 (strings, unknown types). */
    static int elementSize(int dataType) {
        switch (dataType) {
            case DataType.FLOAT_VALUE: case DataType.INT32_VALUE: case DataType.UINT32_VALUE: return 4;
            case DataType.DOUBLE_VALUE: case DataType.INT64_VALUE: case DataType.UINT64_VALUE:
            case DataType.COMPLEX64_VALUE: return 8;
            case DataType.COMPLEX128_VALUE: return 16;
            case DataType.INT8_VALUE: case DataType.UINT8_VALUE: case DataType.BOOL_VALUE: return 1;
            case DataType.INT16_VALUE: case DataType.UINT16_VALUE: case DataType.FLOAT16_VALUE:
            case DataType.BFLOAT16_VALUE: return 2;
            default: return -1;
        }
    }

    /** Float values of a FLOAT tensor; {@code where} prefixes the error (file and tensor). */
    static float[] floats(TensorProto t, String where) {
        if (t.getDataType() != DataType.FLOAT_VALUE) {
            throw new ModelException(where + ": expected a FLOAT tensor, found " + typeName(t.getDataType()));
        }
        int n = checkedCount(t, where);
        float[] out = new float[n];
        if (!t.getRawData().isEmpty()) {
            checkRawSize(t, n, 4, where);
            t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        } else {
            if (t.getFloatDataCount() != n) {
                throw new ModelException(where + ": " + t.getFloatDataCount() + " float_data values for "
                        + n + " elements");
            }
            for (int i = 0; i < n; i++) out[i] = t.getFloatData(i);
        }
        return out;
    }

    /** Integer values of an INT8/UINT8/INT16/UINT16/INT32 (or INT64 within int range) tensor. */
    static int[] ints(TensorProto t, String where) {
        int n = checkedCount(t, where);
        int type = t.getDataType();
        int size = elementSize(type);
        int[] out = new int[n];
        if (!t.getRawData().isEmpty()) {
            checkRawSize(t, n, size, where);
            ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                switch (type) {
                    case DataType.INT8_VALUE -> out[i] = b.get();
                    case DataType.UINT8_VALUE -> out[i] = b.get() & 0xff;
                    case DataType.INT16_VALUE -> out[i] = b.getShort();
                    case DataType.UINT16_VALUE -> out[i] = b.getShort() & 0xffff;
                    case DataType.INT32_VALUE -> out[i] = b.getInt();
                    case DataType.INT64_VALUE -> out[i] = toInt(b.getLong(), where);
                    default -> throw new ModelException(where + ": expected an integer tensor, found " + typeName(type));
                }
            }
            return out;
        }
        switch (type) {
            // ONNX stores all of these narrower types in int32_data
            case DataType.INT8_VALUE, DataType.UINT8_VALUE, DataType.INT16_VALUE, DataType.UINT16_VALUE,
                 DataType.INT32_VALUE -> {
                if (t.getInt32DataCount() != n) {
                    throw new ModelException(where + ": " + t.getInt32DataCount() + " int32_data values for " + n + " elements");
                }
                for (int i = 0; i < n; i++) out[i] = t.getInt32Data(i);
            }
            case DataType.INT64_VALUE -> {
                if (t.getInt64DataCount() != n) {
                    throw new ModelException(where + ": " + t.getInt64DataCount() + " int64_data values for " + n + " elements");
                }
                for (int i = 0; i < n; i++) out[i] = toInt(t.getInt64Data(i), where);
            }
            default -> throw new ModelException(where + ": expected an integer tensor, found " + typeName(type));
        }
        return out;
    }

    /** Integer values as longs: an INT64 tensor's whole range (Slice ends are often INT64_MAX), other types as {@link #ints}. */
    static long[] longs(TensorProto t, String where) {
        if (t.getDataType() != DataType.INT64_VALUE) return java.util.Arrays.stream(ints(t, where)).asLongStream().toArray();
        int n = checkedCount(t, where);
        long[] out = new long[n];
        if (!t.getRawData().isEmpty()) {
            checkRawSize(t, n, 8, where);
            t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
            return out;
        }
        if (t.getInt64DataCount() != n) {
            throw new ModelException(where + ": " + t.getInt64DataCount() + " int64_data values for " + n + " elements");
        }
        for (int i = 0; i < n; i++) out[i] = t.getInt64Data(i);
        return out;
    }

    private static int toInt(long v, String where) {
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new ModelException(where + ": value " + v + " does not fit in 32 bits");
        }
        return (int) v;
    }

    private static int checkedCount(TensorProto t, String where) {
        long n = count(dims(t));
        if (n < 0 || n > Integer.MAX_VALUE) {
            throw new ModelException(where + ": " + n + " elements do not fit in one Java array");
        }
        return (int) n;
    }

    private static void checkRawSize(TensorProto t, int n, int size, String where) {
        if (t.getRawData().size() != (long) n * size) {
            throw new ModelException(where + ": raw_data holds " + t.getRawData().size() + " bytes, expected "
                    + (long) n * size + " for " + n + " elements of " + typeName(t.getDataType()));
        }
    }
}
