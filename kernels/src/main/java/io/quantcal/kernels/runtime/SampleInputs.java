package io.quantcal.kernels.runtime;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Arrays;

/**
 * One sample's values for every model input, in the order of {@link ModelInputs}: per input a float[], double[],
 * long[], int[] or byte[] (uint8) array, row-major in the input's per-sample shape (without the batch dimension). The arrays are not
 * copied.
 */
public final class SampleInputs implements Serializable {

    private static final long serialVersionUID = 1L;

    private final Object[] arrays;

    private SampleInputs(Object[] arrays) {
        for (int i = 0; i < arrays.length; i++) {
            Object a = arrays[i];
            if (!(a instanceof float[] || a instanceof double[] || a instanceof long[] || a instanceof int[]
                    || a instanceof byte[])) {
                throw new IllegalArgumentException("sample input " + i + ": expected a float[], double[], long[], int[] or"
                        + " byte[] (uint8), got "
                        + (a == null ? "null" : a.getClass().getSimpleName()));
            }
        }
        this.arrays = arrays;
    }

    /** The values of each input, in the model's input order. */
    public static SampleInputs of(Object... arrays) {
        return new SampleInputs(arrays.clone());
    }

    /** A sample of a single float input (an image). */
    public static SampleInputs of(float[] values) {
        return new SampleInputs(new Object[] {values});
    }

    public int count() {
        return arrays.length;
    }

    /** Input {@code i}'s values: a float[], double[], long[] or int[]. */
    public Object get(int i) {
        return arrays[i];
    }

    /** Input {@code i}'s values when they are floats. */
    public float[] floats(int i) {
        if (!(arrays[i] instanceof float[] f)) {
            throw new IllegalStateException("sample input " + i + " holds " + arrays[i].getClass().getSimpleName() + ", not float[]");
        }
        return f;
    }

    /** How many values input {@code i} has. */
    public int length(int i) {
        return java.lang.reflect.Array.getLength(arrays[i]);
    }

    /** The element type of input {@code i}'s array. */
    public ElementType type(int i) {
        Object a = arrays[i];
        if (a instanceof float[]) return ElementType.FLOAT;
        if (a instanceof double[]) return ElementType.DOUBLE;
        if (a instanceof long[]) return ElementType.INT64;
        if (a instanceof byte[]) return ElementType.UINT8;
        return ElementType.INT32;
    }

    /**
     * Adds every input's values to {@code digest}, input by input in the model's order, each as its big-endian bytes
     * (a single float input hashes exactly its float bytes). The lengths are fixed by the model's input shapes, so the
     * concatenation is unambiguous for one model.
     */
    public void digest(MessageDigest digest) {
        for (Object a : arrays) {
            ByteBuffer b;
            if (a instanceof float[] f) {
                b = ByteBuffer.allocate(4 * f.length);
                b.asFloatBuffer().put(f);
            } else if (a instanceof double[] d) {
                b = ByteBuffer.allocate(8 * d.length);
                b.asDoubleBuffer().put(d);
            } else if (a instanceof long[] l) {
                b = ByteBuffer.allocate(8 * l.length);
                b.asLongBuffer().put(l);
            } else if (a instanceof byte[] u) {
                b = ByteBuffer.wrap(u);
            } else {
                int[] n = (int[]) a;
                b = ByteBuffer.allocate(4 * n.length);
                b.asIntBuffer().put(n);
            }
            digest.update(b.array());
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SampleInputs s && Arrays.deepEquals(arrays, s.arrays);
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(arrays);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("SampleInputs[");
        for (int i = 0; i < arrays.length; i++) b.append(i == 0 ? "" : ", ").append(type(i)).append(" x ").append(length(i));
        return b.append(']').toString();
    }
}
