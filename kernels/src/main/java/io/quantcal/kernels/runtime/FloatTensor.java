package io.quantcal.kernels.runtime;

import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A named float32 tensor, row-major: what goes into and comes out of a {@link ModelRunner}.
 *
 * <p>The shape is copied; the data array is not (tensors of activations are large, and copying each on
 * the way through would double the memory of a capture): treat it as read-only once wrapped.
 */
public record FloatTensor(String name, long[] shape, float[] data) implements Serializable {

    public FloatTensor {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(shape, "shape of tensor " + name);
        Objects.requireNonNull(data, "data of tensor " + name);
        shape = shape.clone();
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds " + n
                    + " values, data has " + data.length);
        }
    }

    public static FloatTensor of(String name, float[] data, long... shape) {
        return new FloatTensor(name, shape, data);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis];
    }

    /** The batch size: the first dimension. */
    public int batchSize() {
        if (shape.length == 0) throw new IllegalStateException("tensor " + name + " is a scalar: no batch dimension");
        return (int) shape[0];
    }

    public FloatTensor withName(String newName) {
        return new FloatTensor(newName, shape, data);
    }

    /** Samples [from, to) of the batch (a copy). */
    public FloatTensor batch(int from, int to) {
        int n = batchSize();
        if (from < 0 || to > n || from > to) {
            throw new IndexOutOfBoundsException("tensor " + name + ": batch range [" + from + ", " + to + ") of " + n);
        }
        int per = n == 0 ? 0 : data.length / n;
        long[] s = shape.clone();
        s[0] = to - from;
        return new FloatTensor(name, s, Arrays.copyOfRange(data, from * per, to * per));
    }

    /**
     * This tensor with its batch axis first. A network may carry a batch of {@code batch} samples on another axis:
     * torch's MultiheadAttention runs its projections sequence-first ([T, N, D]). The batch axis is axis 0 when its
     * size is {@code batch}, else the one axis before the last whose size is {@code batch} (a MatMul or Gemm acts on
     * the last axis, so moving a leading axis commutes with the layer). Anything else is an error naming the tensor.
     */
    public FloatTensor batchFirst(int batch) {
        if (shape.length == 0) throw new IllegalStateException("tensor " + name + " is a scalar: no batch dimension");
        if (shape[0] == batch) return this;
        int axis = -1;
        for (int k = 1; k < shape.length - 1; k++) {
            if (shape[k] == batch) {
                if (axis >= 0) {
                    throw new IllegalStateException("tensor " + name + " " + Arrays.toString(shape) + ": the batch of "
                            + batch + " could be axis " + axis + " or " + k + ", expected it on axis 0");
                }
                axis = k;
            }
        }
        if (axis < 0) {
            throw new IllegalStateException("tensor " + name + " " + Arrays.toString(shape) + " has no axis of the batch size "
                    + batch + " before its last: its samples cannot be told apart");
        }
        // [A, N, B] -> [N, A, B] with A = dims before the batch axis, B = dims after it.
        long outer = 1, inner = 1;
        for (int k = 0; k < axis; k++) outer *= shape[k];
        for (int k = axis + 1; k < shape.length; k++) inner *= shape[k];
        float[] out = new float[data.length];
        int in = (int) inner;
        for (int a = 0; a < outer; a++) {
            for (int n = 0; n < batch; n++) {
                System.arraycopy(data, (int) ((a * batch + n) * inner), out, (int) ((n * outer + a) * inner), in);
            }
        }
        long[] s = new long[shape.length];
        s[0] = batch;
        for (int k = 0, j = 1; k < shape.length; k++) if (k != axis) s[j++] = shape[k];
        return new FloatTensor(name, s, out);
    }

    /** Tensors of equal sample shape stacked along the batch dimension, in list order. */
    public static FloatTensor concat(String name, List<FloatTensor> parts) {
        if (parts.isEmpty()) throw new IllegalArgumentException("tensor " + name + ": nothing to concatenate");
        long[] sample = Arrays.copyOfRange(parts.get(0).shape, 1, parts.get(0).shape.length);
        long batch = 0;
        long total = 0;
        for (FloatTensor p : parts) {
            if (!Arrays.equals(sample, Arrays.copyOfRange(p.shape, 1, p.shape.length))) {
                throw new IllegalArgumentException("tensor " + name + ": cannot concatenate shapes "
                        + Arrays.toString(parts.get(0).shape) + " and " + Arrays.toString(p.shape));
            }
            batch += p.shape[0];
            total += p.data.length;
        }
        if (total > Integer.MAX_VALUE) throw new IllegalArgumentException("tensor " + name + ": " + total + " values");
        float[] out = new float[(int) total];
        int at = 0;
        for (FloatTensor p : parts) {
            System.arraycopy(p.data, 0, out, at, p.data.length);
            at += p.data.length;
        }
        long[] s = new long[sample.length + 1];
        s[0] = batch;
        System.arraycopy(sample, 0, s, 1, sample.length);
        return new FloatTensor(name, s, out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FloatTensor t && name.equals(t.name) && Arrays.equals(shape, t.shape)
                && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + Arrays.hashCode(shape)) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "FloatTensor[" + name + " " + Arrays.toString(shape) + "]";
    }
}
