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

    /**
     * How many products one output value sums, for a weight of shape {@code w}: a Conv's C/group·kh·kw, a Gemm's K
     * (w [M, K] with transB, else [K, M]), a MatMul's K (w [K, M]).
     */
    default long reductionLength(long[] w) {
        if (this instanceof Conv) return w[1] * w[2] * w[3];
        if (this instanceof Gemm g && g.transB()) return w[1];
        return w[0];
    }

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

    /**
     * What quantizable node {@code n} computes, with its fused Relu/Clip: the one place that maps an ONNX node to a
     * layer forward. A Conv1d becomes its Conv2d of height 1 ({@link io.quantcal.kernels.onnx.QuantizableNode#as2d});
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
        return switch (n.opType()) {
            case "Conv" -> new Conv(new ConvSpec(n.strides(), n.pads(), n.dilations(), n.group()), act);
            case "Gemm" -> new Gemm(n.transB(), act);
            case "MatMul" -> new MatMul(act);
            default -> throw new IllegalArgumentException("node " + n.name() + ": no layer forward for " + n.opType());
        };
    }

    static Conv conv(ConvSpec spec) { return new Conv(spec, Activation.NONE); }

    static Gemm gemm(boolean transB) { return new Gemm(transB, Activation.NONE); }

    static MatMul matmul() { return new MatMul(Activation.NONE); }
}
