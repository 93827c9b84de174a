package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;
import java.util.Arrays;

/**
 * One layer's captured data for a chunk of search samples, and everything needed to re-run it quantized:
 * EasyQuant's per-layer problem max cos(O, Ô(S_w, S_a)).
 *
 * <p>The big arrays ({@code x}, {@code output}, {@code w}, {@code bias}) are not copied (a capture can be
 * hundreds of MB); treat them as immutable. Shapes are row-major.
 *
 * @param layer                  node name, for messages
 * @param sampleIds              ids of the samples along axis 0 of x and output, strictly increasing
 * @param x                      layer input: Conv NCHW [N,C,H,W]; Gemm [N,K]; MatMul [N,...,K]
 * @param xShape                 shape of x
 * @param output                 FP output O: Conv [N,K,OH,OW]; Gemm [N,M]; MatMul [N,...,M]
 * @param outputShape            shape of output
 * @param outputAfterActivation  true: O (and Ô) are taken after the op's fused activation; false: before it
 * @param w                      weight in ONNX layout (Conv [K,C/group,kh,kw]; Gemm [K,M] or [M,K] with transB; MatMul [K,M])
 * @param wShape                 shape of w
 * @param bias                   per-output-channel bias [M] / [K], a single value, or null; kept in float
 * @param op                     what the layer computes
 * @param activation             input activation parameters: the template whose scale is searched (initial scale)
 * @param weight                 weight parameters, per tensor or per output channel (Conv 0, Gemm transB 0 else 1,
 *                               MatMul 1): the template whose scales are searched (initial scales)
 */
public record LayerProblem(String layer, long[] sampleIds, float[] x, long[] xShape, float[] output, long[] outputShape,
                           boolean outputAfterActivation, float[] w, long[] wShape, float[] bias, LayerOp op,
                           QuantParams activation, QuantParams weight) implements Serializable {

    public LayerProblem {
        String what = "LayerProblem " + layer + ": ";
        if (sampleIds == null || x == null || xShape == null || output == null || outputShape == null || w == null
                || wShape == null || op == null || activation == null || weight == null) {
            throw new IllegalArgumentException(what + "only bias may be null");
        }
        sampleIds = sampleIds.clone();
        xShape = xShape.clone();
        outputShape = outputShape.clone();
        wShape = wShape.clone();
        check(what + "x", x, xShape);
        check(what + "output", output, outputShape);
        check(what + "w", w, wShape);
        for (int i = 1; i < sampleIds.length; i++) {
            if (sampleIds[i] <= sampleIds[i - 1]) {
                throw new IllegalArgumentException(what + "sample ids must be strictly increasing (sum in sample order), got "
                        + sampleIds[i - 1] + " then " + sampleIds[i]);
            }
        }
        if (xShape.length < 2 || xShape[0] != sampleIds.length || outputShape[0] != sampleIds.length) {
            throw new IllegalArgumentException(what + sampleIds.length + " sample ids but x " + Arrays.toString(xShape)
                    + " and output " + Arrays.toString(outputShape) + " along axis 0");
        }
        long[] expected = expectedOutputShape(op, xShape, wShape);
        if (!Arrays.equals(expected, outputShape)) {
            throw new IllegalArgumentException(what + op.opType() + " of x " + Arrays.toString(xShape) + " and w "
                    + Arrays.toString(wShape) + " gives " + Arrays.toString(expected) + ", output is " + Arrays.toString(outputShape));
        }
        int channels = (int) expected[op.outputChannelAxis(expected.length)];
        if (bias != null && bias.length != 1 && bias.length != channels) {
            throw new IllegalArgumentException(what + "bias must have " + channels + " values (one per output channel) or one, got "
                    + bias.length);
        }
        if (activation.perChannel()) {
            throw new IllegalArgumentException(what + "input activation parameters must be per tensor, got axis " + activation.axis());
        }
        if (weight.perChannel()) {
            int axis = weightChannelAxis(op);
            if (weight.axis() != axis || weight.channels() != channels) {
                throw new IllegalArgumentException(what + "per-channel weight parameters must run along the output-channel axis "
                        + axis + " with " + channels + " channels, got axis " + weight.axis() + " with " + weight.channels());
            }
        }
    }

    /** Number of samples in this chunk. */
    public int samples() {
        return sampleIds.length;
    }

    /**
     * Floating-point operations of one candidate's layer forward on this chunk: 2 · (output values) · (products per
     * output value), the work of the gemm that scores a candidate.
     */
    public long candidateFlops() {
        return 2L * output.length * op.reductionLength(wShape);
    }

    /** Output channels: Conv's K, Gemm/MatMul's M. */
    public int outputChannels() {
        return (int) outputShape[op.outputChannelAxis(outputShape.length)];
    }

    /** The weight axis that holds output channels: Conv 0, Gemm 0 with transB else 1, MatMul 1. */
    public static int weightChannelAxis(LayerOp op) {
        return op.weightAxis();
    }

    @Override public long[] sampleIds() { return sampleIds.clone(); }
    @Override public long[] xShape() { return xShape.clone(); }
    @Override public long[] outputShape() { return outputShape.clone(); }
    @Override public long[] wShape() { return wShape.clone(); }

    long[] ids() { return sampleIds; }
    long[] xs() { return xShape; }
    long[] ws() { return wShape; }
    long[] os() { return outputShape; }

    static long[] expectedOutputShape(LayerOp op, long[] xShape, long[] wShape) {
        return op.outputShape(xShape, wShape);
    }

    private static void check(String what, float[] data, long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n != data.length) {
            throw new IllegalArgumentException(what + ": shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        }
    }
}
