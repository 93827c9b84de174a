package io.quantcal.kernels.layer;

import java.io.Serializable;
import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a quantizable layer computes, without its tensors: a 2-D Conv with its attributes, a Gemm
 * (alpha = beta = 1, transA = 0) or a MatMul with a constant weight, each with the activation fused after
 * it. Small and serializable, so a Spark task can carry it next to the layer's captured data.
 */
public sealed interface LayerOp extends Serializable permits LayerOp.Conv, LayerOp.Gemm, LayerOp.MatMul {

    Activation activation();

    /** The ONNX op type, as the scale table's {@code op_type} column spells it. */
    String opType();

    /**
     * How many products one output value sums, for a weight of shape {@code w}: a Conv's C/group·kh·kw, a Gemm's K
     * (w [M, K] with transB, else [K, M]), a MatMul's K (w [K, M]).
     */
    long reductionLength(long[] w);

    /** The weight axis that holds output channels: Conv 0, Gemm 0 with transB else 1, MatMul 1. */
    int weightAxis();

    /** The output's channel axis for an output of rank {@code rank}: Conv 1, Gemm and MatMul the last. */
    int outputChannelAxis(int rank);

    /** The output's shape for input shape {@code x} and weight shape {@code w}; a mismatch is an error naming both. */
    long[] outputShape(long[] x, long[] w);

    /** The floating-point forward pass y = act(op(x, w) + b) (b nullable). */
    INDArray forward(INDArray x, INDArray w, INDArray b);

    /** ONNX Conv: x [N,C,H,W], w [K,C/group,kh,kw], b [K]. */
    record Conv(ConvSpec spec, Activation activation) implements LayerOp {
        public Conv {
            if (spec == null || activation == null) throw new IllegalArgumentException("Conv: spec and activation must not be null");
        }
        @Override public String opType() { return "Conv"; }
        @Override public long reductionLength(long[] w) { return w[1] * w[2] * w[3]; }
        @Override public int weightAxis() { return 0; }
        @Override public int outputChannelAxis(int rank) { return 1; }
        @Override public long[] outputShape(long[] x, long[] w) { return ConvForward.outputShape(x, w, spec); }
        @Override public INDArray forward(INDArray x, INDArray w, INDArray b) {
            return ConvForward.conv2d(x, w, b, spec, activation);
        }
    }

    /** ONNX Gemm with alpha = beta = 1: x [N,K], w [K,M] (or [M,K] with transB), b broadcast to [N,M]. */
    record Gemm(boolean transB, Activation activation) implements LayerOp {
        public Gemm {
            if (activation == null) throw new IllegalArgumentException("Gemm: activation must not be null");
        }
        @Override public String opType() { return "Gemm"; }
        @Override public long reductionLength(long[] w) { return transB ? w[1] : w[0]; }
        @Override public int weightAxis() { return transB ? 0 : 1; }
        @Override public int outputChannelAxis(int rank) { return rank - 1; }
        @Override public long[] outputShape(long[] x, long[] w) {
            if (w.length == 2 && x.length != 2) {
                throw new IllegalArgumentException("Gemm input must be [N,K], got " + Arrays.toString(x));
            }
            return matrixProductShape(this, x, w, transB);
        }
        @Override public INDArray forward(INDArray x, INDArray w, INDArray b) {
            return GemmForward.gemm(x, w, b, transB, activation);
        }
    }

    /** ONNX MatMul with a constant weight: x [..., K], w [K, M]; an optional bias is the Add that follows. */
    record MatMul(Activation activation) implements LayerOp {
        public MatMul {
            if (activation == null) throw new IllegalArgumentException("MatMul: activation must not be null");
        }
        @Override public String opType() { return "MatMul"; }
        @Override public long reductionLength(long[] w) { return w[0]; }
        @Override public int weightAxis() { return 1; }
        @Override public int outputChannelAxis(int rank) { return rank - 1; }
        @Override public long[] outputShape(long[] x, long[] w) { return matrixProductShape(this, x, w, false); }
        @Override public INDArray forward(INDArray x, INDArray w, INDArray b) {
            return MatMulForward.matmul(x, w, b, activation);
        }
    }

    /** x [..., K] times a rank-2 weight ([K, M], or [M, K] with {@code transB}): [..., M]. */
    private static long[] matrixProductShape(LayerOp op, long[] x, long[] w, boolean transB) {
        if (w.length != 2) {
            throw new IllegalArgumentException(op.opType() + " weight must have rank 2, got " + Arrays.toString(w));
        }
        long k = transB ? w[1] : w[0];
        long m = transB ? w[0] : w[1];
        if (x[x.length - 1] != k) {
            throw new IllegalArgumentException(op.opType() + ": input " + Arrays.toString(x) + " and weight "
                    + Arrays.toString(w) + " disagree on K");
        }
        long[] y = x.clone();
        y[y.length - 1] = m;
        return y;
    }

    /**
     * What quantizable node {@code n} computes, with its fused Relu/Clip: its
     * {@link io.quantcal.kernels.onnx.OpKind#forward kind's} layer forward. A Conv1d becomes its Conv2d of height 1 ({@link io.quantcal.kernels.onnx.QuantizableNode#as2d});
     * a node no layer forward computes ({@link io.quantcal.kernels.onnx.QuantizableNode#searchable}) is an error.
     */
    static LayerOp of(io.quantcal.kernels.onnx.QuantizableNode node) {
        io.quantcal.kernels.onnx.QuantizableNode n = node.as2d();
        Activation act = n.activation() == null ? Activation.NONE
                : n.activation().equals("Relu") ? Activation.RELU
                : Activation.clip((float) n.clipMin(), (float) n.clipMax());
        if (!n.searchable()) {
            throw new IllegalArgumentException("node " + n.name() + ": no layer forward for " + n.opType()
                    + " (it is calibrated and exported, not searched)");
        }
        return n.kind().forward(n, act);
    }

    static Conv conv(ConvSpec spec) { return new Conv(spec, Activation.NONE); }

    static Gemm gemm(boolean transB) { return new Gemm(transB, Activation.NONE); }

    static MatMul matmul() { return new MatMul(Activation.NONE); }
}
