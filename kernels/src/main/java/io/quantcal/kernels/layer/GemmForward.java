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

    /** y = x·w + b (x·wᵀ + b with transB); x [N,K], w [K,M] or [M,K]; b nullable: [M], [1,M], [N,M] or one value. */
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
        INDArray y = product(Tensors.asFloat(x), Tensors.asFloat(w), transB, x.size(0), m, 'f');
        addBias(y, b, "Gemm");
        return act.applyInPlace(y);
    }

    /** x·w (x·wᵀ with transB) into a new [n, m] float array of the given order. */
    static INDArray product(INDArray x, INDArray w, boolean transB, long n, long m, char order) {
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, m}, order);
        Nd4j.exec(new Mmul(x, w, y, new MMulTranspose(false, transB, false)));
        return y;
    }

    /** Adds a bias broadcast to y [N,M] in place (ONNX unidirectional broadcasting of C). */
    static void addBias(INDArray y, INDArray b, String op) {
        if (b == null) return;
        long n = y.size(0), m = y.size(1);
        INDArray bf = Tensors.asFloat(b);
        if (b.length() == 1) {
            y.addi(bf.getDouble(0));
        } else if (b.length() == m && (b.rank() == 1 || (b.rank() == 2 && b.size(0) == 1))) {
            y.addiRowVector(bf.reshape(m));
        } else if (b.rank() == 2 && b.size(0) == n && b.size(1) == m) {
            y.addi(bf);
        } else if (b.rank() == 2 && b.size(0) == n && b.size(1) == 1) {
            y.addiColumnVector(bf);
        } else {
            throw new IllegalArgumentException(op + " bias of shape " + Tensors.shape(b)
                    + " does not broadcast to the output [" + n + ", " + m + "]");
        }
    }
}
