package io.quantcal.kernels.onnx;

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
 * @param pads             Conv pads [begin..., end...], auto_pad resolved (empty for Gemm and MatMul)
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

    /** The operator types quantcal quantizes (with a constant weight, see {@code QuantizableNodeFinder}). */
    public static final java.util.Set<String> OP_TYPES = java.util.Set.of("Conv", "ConvTranspose", "Gemm", "MatMul");

    /**
     * Whether the layer passes that search or solve per layer (EasyQuant, AdaRound) and the DFQ passes take this node:
     * Conv (1-D and 2-D), Gemm and MatMul. A ConvTranspose is calibrated and exported; those passes keep it at its
     * calibrated parameters and say so.
     */
    public boolean searchable() {
        return !opType.equals("ConvTranspose") && (!opType.equals("Conv") || weightShape.length <= 4);
    }

    public QuantizableNode {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(opType, "opType");
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(output, "output");
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
        return opType.equals("Conv") && weightShape.length == 3;
    }

    /**
     * This node as the layer kernels compute it. A Conv1d is the Conv2d of height 1 that computes the same thing:
     * strides [1, s], pads [0, b, 0, e], dilations [1, d], weight [K, C/group, 1, k], x [N, C, 1, L]
     * ({@link #as2dTensorShape}). The weight's values and their order do not change, so integer weights and
     * per-channel scales found on the lifted layer are the Conv1d's. Any other node is returned as it is.
     */
    public QuantizableNode as2d() {
        if (!isConv1d()) return this;
        long[] w = {weightShape[0], weightShape[1], 1, weightShape[2]};
        long[] st = {1, strides.length == 1 ? strides[0] : 1};
        long[] dl = {1, dilations.length == 1 ? dilations[0] : 1};
        long[] pd = pads.length == 2 ? new long[] {0, pads[0], 0, pads[1]} : new long[] {0, 0, 0, 0};
        return new QuantizableNode(name, opType, input, weight, bias, output, activation, activationOutput, w, group,
                st, pd, dl, transB, weightAxis, clipMin, clipMax);
    }

    /** A Conv1d's input or output shape [N, C, L] as its lifted Conv2d's [N, C, 1, L] ({@link #as2d}); else unchanged. */
    public long[] as2dTensorShape(long[] shape) {
        if (!isConv1d() || shape.length != 3) return shape.clone();
        return new long[] {shape[0], shape[1], 1, shape[2]};
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
        return opType.equals("Conv") && group > 1 && weightShape[1] == 1;
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
                + (opType.equals("Conv") ? ", group " + group + ", strides " + Arrays.toString(strides) + ", pads "
                        + Arrays.toString(pads) + ", dilations " + Arrays.toString(dilations) : "")
                + (opType.equals("Gemm") ? ", transB " + transB : "") + ", weight axis " + weightAxis + "]";
    }
}
