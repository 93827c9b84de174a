package io.quantcal.kernels.layer;

import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ONNX Gemm with alpha = beta = 1 and transA = 0: y = x·w + b, or x·wᵀ + b with transB.
 *
 * <p>Runs ND4J's {@code matmul} custom op ({@link Mmul}) into a preallocated column-major ('f') output:
 * measured faster than {@code INDArray.mmul} and than a row-major output, most of all with transB
 * (the weight is never transposed in memory). The result is therefore 'f' ordered; shape and values
 * are what ONNX gives, {@code dup('c')} it if raw row-major memory is needed.
 */
public final class GemmForward {

    private GemmForward() {}

    /** y = x·w + b (x·wᵀ + b with transB); x [N,K], w [K,M] or [M,K]; b nullable: [M], [1,M], [N,M], [N,1] or one value. */
    public static INDArray gemm(INDArray x, INDArray w, INDArray b, boolean transB) {
        return gemm(x, w, b, transB, Activation.NONE);
    }

    /** act(x·w + b), see {@link #gemm(INDArray, INDArray, INDArray, boolean)}. */
    public static INDArray gemm(INDArray x, INDArray w, INDArray b, boolean transB, Activation act) {
        Tensors.checkRank("Gemm input x [N,K]", x, 2);
        Tensors.checkRank("Gemm weight w", w, 2);
        long k = x.size(1);
        long wk = transB ? w.size(1) : w.size(0);
        if (wk != k) {
            throw new IllegalArgumentException("Gemm" + (transB ? " (transB)" : "") + ": input " + Tensors.shape(x)
                    + " and weight " + Tensors.shape(w) + " disagree on K");
        }
        long m = transB ? w.size(0) : w.size(1);
        INDArray y = product(Tensors.asFloat(x), Tensors.asFloat(w), b, transB, x.size(0), m, 'f', "Gemm");
        return act.applyInPlace(y);
    }

    /**
     * x·w + b (x·wᵀ + b with transB) into a new [n, m] float array of the given order. The bias is written
     * into the output first and the product accumulated onto it (beta = 1): one native call. A separate
     * bias add after the product cost more than the product itself on a busy 2-core machine (the next op
     * waits for the OpenMP threads the product leaves spinning).
     */
    static INDArray product(INDArray x, INDArray w, INDArray b, boolean transB, long n, long m, char order, String op) {
        INDArray y = b == null ? Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, m}, order)
                : broadcastBias(b, n, m, order, op);
        Nd4j.exec(new Mmul(x, w, y, 1.0, b == null ? 0.0 : 1.0, new MMulTranspose(false, transB, false)));
        return y;
    }

    /** The bias broadcast to [n, m] (ONNX unidirectional broadcasting of Gemm's C), as a new array. */
    static INDArray broadcastBias(INDArray b, long n, long m, char order, String op) {
        if (b.rank() == 2 && b.size(0) == n && b.size(1) == m) {
            return Tensors.asFloat(b).dup(order);
        }
        boolean row = b.length() == m && (b.rank() == 1 || (b.rank() == 2 && b.size(0) == 1));
        boolean column = !row && b.rank() == 2 && b.size(0) == n && b.size(1) == 1;
        if (!row && !column && b.length() != 1) {
            throw new IllegalArgumentException(op + " bias of shape " + Tensors.shape(b)
                    + " does not broadcast to the output [" + n + ", " + m + "]");
        }
        if (n * m > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(op + " output [" + n + ", " + m + "] exceeds 2^31 elements");
        }
        float[] bv = Tensors.asFloat(b).dup('c').data().asFloat();
        float[] v = new float[(int) (n * m)];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                float value = row ? bv[j] : column ? bv[i] : bv[0];
                v[(int) (order == 'c' ? i * m + j : j * n + i)] = value;
            }
        }
        return Nd4j.create(v, new long[] {n, m}, order);
    }
}
