package io.quantcal.kernels.onnx;

import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * A node whose weight and input activation quantcal quantizes: Conv (any group), Gemm with a constant B,
 * or MatMul with a constant rank-2 B.
 *
 * @param name             node name (unique in the model)
 * @param opType           Conv, Gemm or MatMul
 * @param input            the input activation tensor (X of Conv, A of Gemm/MatMul)
 * @param weight           the weight initializer (W of Conv, B of Gemm/MatMul)
 * @param bias             the bias initializer (B of Conv, C of Gemm), or null
 * @param output           the node's output tensor
 * @param activation       "Relu" or "Clip" when the output's only consumer is that activation, else null
 * @param activationOutput the activation's output tensor, or null
 * @param weightShape      the weight's dims: Conv [C_out, C_in/group, k...], Gemm/MatMul as stored
 * @param group            Conv groups (1 for Gemm and MatMul)
 * @param strides          Conv strides per spatial axis (empty for Gemm and MatMul)
 * @param pads             Conv pads [begin..., end...], auto_pad resolved (empty for Gemm and MatMul); ConvTranspose
 *                         pads [begin..., end − output_padding...] (what its output size needs), empty when
 *                         output_shape or auto_pad SAME_* leave them to the input's size
 * @param dilations        Conv dilations per spatial axis (empty for Gemm and MatMul)
 * @param transB           Gemm transB (false for Conv and MatMul)
 * @param weightAxis       the weight's output-channel axis, for per-channel parameters: Conv 0, ConvTranspose 1
 *                         ([C_in, C_out, k...]), Gemm 0 if transB else 1, MatMul 1
 * @param clipMin          lower bound of the activation: Clip's min, 0 for Relu, −∞ without activation
 * @param clipMax          upper bound of the activation: Clip's max, +∞ for Relu or no activation
 */
public record QuantizableNode(String name, String opType, String input, String weight, String bias,
                              String output, String activation, String activationOutput, long[] weightShape,
                              int group, long[] strides, long[] pads, long[] dilations, boolean transB,
                              int weightAxis, double clipMin, double clipMax) implements Serializable {

    /** The operator types quantcal quantizes (with a constant weight, see {@link OpKind#read}). */
    public static final java.util.Set<String> OP_TYPES = OpKind.OP_TYPES;

    /** What quantcal knows of this node's operator: its layout, lowering, forward and coverage rules. */
    public OpKind kind() {
        return OpKind.of(opType);
    }

    /**
     * Whether the layer passes that search or solve per layer (EasyQuant, AdaRound, learn, stochastic rounding) take
     * this node: Conv (1-D and 2-D), ConvTranspose (1-D and 2-D, as the Conv that computes it, {@link #as2d}), Gemm and
     * MatMul. Any other is calibrated and exported; those passes keep it at its calibrated parameters and say why
     * ({@link #whyNotSearchable}).
     */
    public boolean searchable() {
        return whyNotSearchable() == null;
    }

    /** Why the per-layer passes keep this node at its calibrated parameters, or null when they take it. */
    public String whyNotSearchable() {
        return kind().whyNotSearchable(this);
    }

    public QuantizableNode {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(opType, "opType");
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(output, "output");
        if (OpKind.of(opType) == null) {
            throw new IllegalArgumentException("node " + name + ": op type " + opType + " is not one quantcal quantizes "
                    + OpKind.OP_TYPES);
        }
        weightShape = weightShape.clone();
        strides = strides.clone();
        pads = pads.clone();
        dilations = dilations.clone();
        if (weightAxis < 0 || weightAxis >= weightShape.length) {
            throw new IllegalArgumentException("node " + name + ": weight axis " + weightAxis
                    + " outside a weight of rank " + weightShape.length);
        }
    }

    /** True for a Conv over one spatial axis (audio and sequence models): x [N, C, L], w [K, C/group, k]. */
    public boolean isConv1d() {
        return kind() == OpKind.CONV && weightShape.length == 3;
    }

    /** True for a ConvTranspose (weight [C_in, C_out, k...], output channels on axis 1). */
    public boolean isConvTranspose() {
        return kind() == OpKind.CONV_TRANSPOSE;
    }

    /**
     * This node as the layer kernels compute it: a 2-D Conv, Gemm or MatMul.
     * <ul>
     * <li>A Conv1d is the Conv2d of height 1 that computes the same thing: strides [1, s], pads [0, b, 0, e],
     * dilations [1, d], weight [K, C/group, 1, k], x [N, C, 1, L]. The weight's values and order do not change.</li>
     * <li>A ConvTranspose (2-D, or 1-D lifted the same way) with strides s, dilations d, kernel k and pads b, e is the
     * Conv with stride 1, dilations d and pads d·(k − 1) − b, d·(k − 1) − e over its input with s − 1 zeros inserted
     * between neighbours ({@link #as2dInput}), with the weight [C_out, C_in, k...] flipped along every spatial axis
     * ({@link #as2dWeight}); its output channels are then on axis 0 ({@link #as2dWeightParams}). Quantization is
     * element-wise and zero is on every grid, so the integer weights and scales found on it are the ConvTranspose's.</li>
     * </ul>
     * Any other node, and a node that is not {@link #searchable}, is returned as it is.
     */
    public QuantizableNode as2d() {
        return searchable() ? kind().as2d(this) : this;
    }

    /**
     * The layer's input x as {@link #as2d} computes on it: a Conv1d's [N, C, L] as [N, C, 1, L]; a ConvTranspose's
     * with (stride − 1) zeros inserted between neighbours along each spatial axis; any other unchanged.
     */
    public FloatTensor as2dInput(FloatTensor x) {
        if (!searchable() || !(isConv1d() || isConvTranspose())) return x;
        FloatTensor lifted = x.rank() == 3 ? FloatTensor.of(x.name(), x.data(), x.dim(0), x.dim(1), 1, x.dim(2)) : x;
        if (!isConvTranspose()) return lifted;
        long[] st = strides.length == 1 ? new long[] {1, strides[0]} : strides;
        if (st[0] == 1 && st[1] == 1) return lifted;
        int n = (int) lifted.dim(0), c = (int) lifted.dim(1), h = (int) lifted.dim(2), w = (int) lifted.dim(3);
        int sh = (int) st[0], sw = (int) st[1];
        int uh = (h - 1) * sh + 1, uw = (w - 1) * sw + 1;
        float[] src = lifted.data();
        float[] up = new float[Math.multiplyExact(Math.multiplyExact(n * c, uh), uw)];
        for (int plane = 0; plane < n * c; plane++) {
            for (int i = 0; i < h; i++) {
                int from = (plane * h + i) * w, to = (plane * uh + i * sh) * uw;
                for (int j = 0; j < w; j++) up[to + j * sw] = src[from + j];
            }
        }
        return FloatTensor.of(x.name(), up, n, c, uh, uw);
    }

    /** The layer's output as {@link #as2d} computes it: a 1-D Conv's or ConvTranspose's [N, C, L] as [N, C, 1, L]. */
    public FloatTensor as2dOutput(FloatTensor y) {
        if (!searchable() || weightShape.length != 3 || y.rank() != 3) return y;
        return FloatTensor.of(y.name(), y.data(), y.dim(0), y.dim(1), 1, y.dim(2));
    }

    /** The ONNX weight's values in {@link #as2d}'s layout: a ConvTranspose's flipped and transposed, any other as given. */
    public float[] as2dWeight(float[] w) {
        if (!searchable() || !isConvTranspose()) return w;
        return kind().layout(this).toRows(w, outputChannels(), (int) kind().reductionLength(this), weightShape);
    }

    /** The weight's parameters for {@link #as2d}'s weight: a ConvTranspose's per-channel ones on axis 0. */
    public QuantParams as2dWeightParams(QuantParams p) {
        return withWeightAxis(p, as2d().weightAxis);
    }

    /** Parameters found on {@link #as2d}'s weight, for this node's ONNX weight (per-channel axis {@link #weightAxis}). */
    public QuantParams fromAs2dWeightParams(QuantParams p) {
        return withWeightAxis(p, weightAxis);
    }

    private static QuantParams withWeightAxis(QuantParams p, int axis) {
        if (!p.perChannel() || p.axis() == axis) return p;
        return new QuantParams(p.grid(), p.symmetric(), axis, p.scale(), p.zeroPoint());
    }

    @Override
    public long[] weightShape() {
        return weightShape.clone();
    }

    @Override
    public long[] strides() {
        return strides.clone();
    }

    @Override
    public long[] pads() {
        return pads.clone();
    }

    @Override
    public long[] dilations() {
        return dilations.clone();
    }

    /** Number of output channels: the weight's extent along {@link #weightAxis}. */
    public int outputChannels() {
        return (int) weightShape[weightAxis];
    }

    /** A Conv whose every group has one input channel (group = C_in, C_out = multiplier · C_in). */
    public boolean depthwise() {
        return kind() == OpKind.CONV && group > 1 && weightShape[1] == 1;
    }

    /** The tensor the layer's result ends in: the activation's output if there is one, else the node's. */
    public String finalOutput() {
        return activationOutput != null ? activationOutput : output;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantizableNode q && name.equals(q.name) && opType.equals(q.opType)
                && input.equals(q.input) && weight.equals(q.weight) && Objects.equals(bias, q.bias)
                && output.equals(q.output) && Objects.equals(activation, q.activation)
                && Objects.equals(activationOutput, q.activationOutput) && Arrays.equals(weightShape, q.weightShape)
                && group == q.group && Arrays.equals(strides, q.strides) && Arrays.equals(pads, q.pads)
                && Arrays.equals(dilations, q.dilations) && transB == q.transB && weightAxis == q.weightAxis
                && Double.compare(clipMin, q.clipMin) == 0 && Double.compare(clipMax, q.clipMax) == 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, opType, input, weight, bias, output, activation, activationOutput,
                Arrays.hashCode(weightShape), group, Arrays.hashCode(strides), Arrays.hashCode(pads),
                Arrays.hashCode(dilations), transB, weightAxis, clipMin, clipMax);
    }

    @Override
    public String toString() {
        return "QuantizableNode[" + name + " " + opType + " " + input + " × " + weight + Arrays.toString(weightShape)
                + (bias != null ? " + " + bias : "") + " → " + output
                + (activation != null ? " → " + activation + "[" + clipMin + ", " + clipMax + "] → " + activationOutput : "")
                + kind().describe(this) + ", weight axis " + weightAxis + "]";
    }
}
