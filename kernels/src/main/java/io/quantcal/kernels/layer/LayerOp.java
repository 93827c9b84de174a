package io.quantcal.kernels.layer;

import java.io.Serializable;

/**
 * What a quantizable layer computes, without its tensors: a 2-D Conv with its attributes, a Gemm
 * (alpha = beta = 1, transA = 0) or a MatMul with a constant weight, each with the activation fused after
 * it. Small and serializable, so a Spark task can carry it next to the layer's captured data.
 */
public sealed interface LayerOp extends Serializable permits LayerOp.Conv, LayerOp.Gemm, LayerOp.MatMul {

    Activation activation();

    /** The ONNX op type, as the scale table's {@code op_type} column spells it. */
    String opType();

    /** ONNX Conv: x [N,C,H,W], w [K,C/group,kh,kw], b [K]. */
    record Conv(ConvSpec spec, Activation activation) implements LayerOp {
        public Conv {
            if (spec == null || activation == null) throw new IllegalArgumentException("Conv: spec and activation must not be null");
        }
        @Override public String opType() { return "Conv"; }
    }

    /** ONNX Gemm with alpha = beta = 1: x [N,K], w [K,M] (or [M,K] with transB), b broadcast to [N,M]. */
    record Gemm(boolean transB, Activation activation) implements LayerOp {
        public Gemm {
            if (activation == null) throw new IllegalArgumentException("Gemm: activation must not be null");
        }
        @Override public String opType() { return "Gemm"; }
    }

    /** ONNX MatMul with a constant weight: x [..., K], w [K, M]; an optional bias is the Add that follows. */
    record MatMul(Activation activation) implements LayerOp {
        public MatMul {
            if (activation == null) throw new IllegalArgumentException("MatMul: activation must not be null");
        }
        @Override public String opType() { return "MatMul"; }
    }

    static Conv conv(ConvSpec spec) { return new Conv(spec, Activation.NONE); }

    static Gemm gemm(boolean transB) { return new Gemm(transB, Activation.NONE); }

    static MatMul matmul() { return new MatMul(Activation.NONE); }
}
