package io.quantcal.kernels.layer;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * ONNX MatMul with a constant weight: x [..., K] · w [K, M] → [..., M]. Leading dimensions of x are
 * flattened into rows (row-major, so a row-major x is not copied), one matrix product runs, and the
 * result is reshaped back. An optional bias stands for the Add that follows MatMul in transformer graphs.
 *
 * <p>Rank-2 inputs give a column-major ('f') result, as {@link GemmForward} does; rank 3 and more give
 * row-major, which reshapes to [..., M] without a copy.
 */
public final class MatMulForward {

    private MatMulForward() {}

    /** x·w. */
    public static INDArray matmul(INDArray x, INDArray w) {
        return matmul(x, w, null, Activation.NONE);
    }

    /** act(x·w + b), b nullable and broadcast over the last axis ([M] or one value). */
    public static INDArray matmul(INDArray x, INDArray w, INDArray b, Activation act) {
        if (x == null || x.rank() < 1) {
            throw new IllegalArgumentException("MatMul input x must have rank >= 1, got "
                    + (x == null ? "null" : Tensors.shape(x)));
        }
        Tensors.checkRank("MatMul weight w [K,M]", w, 2);
        long[] xs = x.shape();
        long k = xs[xs.length - 1];
        if (w.size(0) != k) {
            throw new IllegalArgumentException("MatMul: input " + Tensors.shape(x) + " and weight " + Tensors.shape(w)
                    + " disagree on K");
        }
        long m = w.size(1);
        long rows = x.length() / k;
        INDArray x2 = Tensors.asFloat(x).reshape('c', rows, k);
        char order = xs.length == 2 ? 'f' : 'c';
        if (b != null && b.length() != 1 && b.length() != m) {
            throw new IllegalArgumentException("MatMul bias must have M = " + m + " values (or one), got shape "
                    + Tensors.shape(b));
        }
        INDArray bm = b == null || b.length() == 1 ? b : b.reshape(m);
        INDArray y = GemmForward.product(x2, Tensors.asFloat(w), bm, false, rows, m, order, "MatMul");
        act.applyInPlace(y);
        if (xs.length == 2) return y;
        long[] ys = Arrays.copyOf(xs, xs.length);
        ys[ys.length - 1] = m;
        return y.reshape('c', ys);
    }
}
