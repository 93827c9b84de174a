package io.quantcal.kernels.adaround;

import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.WeightLayout;
import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One layer's AdaRound problem as a matrix problem, in plain arrays (what a Spark task carries):
 * minimise ‖act(W X + b) − act(W̃ X + b)‖² over the rounding of W (Nagel et al. 2020, eq. 25; the
 * "asymmetric" form, eq. 26, when {@code target} comes from the floating-point network and X from the
 * quantized one).
 *
 * <p>Layout. W is [outChannels, depth] row-major: row c is output channel c. Grouped convolutions are
 * block diagonal: output channels [g·K/G, (g+1)·K/G) read input rows [g·depth, (g+1)·depth), so X has
 * groups·depth rows. X is stored column by column ({@code inputs} is Xᵀ, [columns, groups·depth]
 * row-major): one column is one conv patch (im2col) or one Gemm/MatMul input row, and a batch of columns
 * is a gather of contiguous runs. {@code target}, when given, is Yᵀ [columns, outChannels] row-major, after
 * the output clip; null means Y = act(W X + b) from this W and X.
 *
 * <p>act is the fused activation as a clip to [{@code outputMin}, {@code outputMax}]: ReLU is [0, +∞),
 * ReLU6 / Clip is [min, max], no activation (or outputs compared before it) is (−∞, +∞).
 *
 * @param weightShape      the weight tensor's ONNX shape, the shape of the result's integer weights
 * @param layout           how the ONNX weight maps onto W ({@link WeightLayout}): results go back through it
 * @param scale            per tensor (1 value) or per output channel (outChannels values); float32-exact
 * @param zeroPoint        same length as scale
 * @param bias             [outChannels] or null
 */
public record AdaRoundProblem(String layer, long[] weightShape, WeightLayout layout, float[] weight,
                              int outChannels, int depth, int groups, float[] bias, double[] scale, int[] zeroPoint,
                              int qmin, int qmax, float[] inputs, int columns, float[] target, double outputMin,
                              double outputMax)
        implements Serializable {

    /** A Conv/Gemm weight ({@code transposedWeight} false: W itself) or Gemm/MatMul Wᵀ (true), output clip as given. */
    public AdaRoundProblem(String layer, long[] weightShape, boolean transposedWeight, float[] weight, int outChannels,
                           int depth, int groups, float[] bias, double[] scale, int[] zeroPoint, int qmin, int qmax,
                           float[] inputs, int columns, float[] target, double outputMin, double outputMax) {
        this(layer, weightShape, transposedWeight ? WeightLayout.TRANSPOSED : WeightLayout.ROWS, weight, outChannels, depth,
                groups, bias, scale, zeroPoint, qmin, qmax, inputs, columns, target, outputMin, outputMax);
    }

    /** Without an output clip, or with a ReLU ([0, +∞)) when {@code reluOutput}. */
    public AdaRoundProblem(String layer, long[] weightShape, boolean transposedWeight, float[] weight, int outChannels,
                           int depth, int groups, float[] bias, double[] scale, int[] zeroPoint, int qmin, int qmax,
                           float[] inputs, int columns, float[] target, boolean reluOutput) {
        this(layer, weightShape, transposedWeight, weight, outChannels, depth, groups, bias, scale, zeroPoint, qmin, qmax,
                inputs, columns, target, reluOutput ? 0 : Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY);
    }

    public AdaRoundProblem {
        String what = "AdaRound problem of layer " + layer + ": ";
        if (layout == null) throw new IllegalArgumentException(what + "weight layout must not be null");
        if (outChannels < 1 || depth < 1 || groups < 1 || columns < 1) {
            throw new IllegalArgumentException(what + "outChannels, depth, groups and columns must be >= 1, got "
                    + outChannels + ", " + depth + ", " + groups + ", " + columns);
        }
        if (outChannels % groups != 0) {
            throw new IllegalArgumentException(what + outChannels + " output channels do not split into " + groups + " groups");
        }
        if (weight.length != (long) outChannels * depth) {
            throw new IllegalArgumentException(what + "weight needs outChannels·depth = " + (long) outChannels * depth
                    + " values, got " + weight.length);
        }
        long elements = 1;
        for (long d : weightShape) elements *= d;
        if (elements != weight.length) {
            throw new IllegalArgumentException(what + "weight shape " + Arrays.toString(weightShape) + " does not hold "
                    + weight.length + " values");
        }
        if (inputs.length != (long) columns * groups * depth) {
            throw new IllegalArgumentException(what + "inputs need columns·groups·depth = " + (long) columns * groups * depth
                    + " values, got " + inputs.length);
        }
        if (target != null && target.length != (long) columns * outChannels) {
            throw new IllegalArgumentException(what + "target needs columns·outChannels = " + (long) columns * outChannels
                    + " values, got " + target.length);
        }
        if (bias != null && bias.length != outChannels) {
            throw new IllegalArgumentException(what + "bias needs " + outChannels + " values, got " + bias.length);
        }
        if (scale.length != zeroPoint.length || (scale.length != 1 && scale.length != outChannels)) {
            throw new IllegalArgumentException(what + "scale and zero point need 1 or " + outChannels
                    + " (per output channel) values each, got " + scale.length + " and " + zeroPoint.length);
        }
        if (qmin >= qmax) throw new IllegalArgumentException(what + "qmin " + qmin + " must be < qmax " + qmax);
        if (!(outputMin < outputMax) || outputMin == Double.POSITIVE_INFINITY || outputMax == Double.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException(what + "output clip [" + outputMin + ", " + outputMax
                    + "] must have min < max (use -inf / +inf for no bound)");
        }
        for (int c = 0; c < scale.length; c++) {
            if (!(scale[c] > 0) || Double.isInfinite(scale[c])) {
                throw new IllegalArgumentException(what + "scale of channel " + c + " must be positive and finite, got " + scale[c]);
            }
            if (zeroPoint[c] < qmin || zeroPoint[c] > qmax) {
                throw new IllegalArgumentException(what + "zero point " + zeroPoint[c] + " of channel " + c
                        + " outside [" + qmin + ", " + qmax + "]");
            }
        }
        weightShape = weightShape.clone();
    }

    @Override
    public long[] weightShape() {
        return weightShape.clone();
    }

    /** Output channels per group. */
    public int groupChannels() {
        return outChannels / groups;
    }

    public double scale(int channel) {
        return scale[scale.length == 1 ? 0 : channel];
    }

    public int zeroPoint(int channel) {
        return zeroPoint[zeroPoint.length == 1 ? 0 : channel];
    }

    /** True when the output is clipped (a fused ReLU, ReLU6 or Clip is part of the reconstructed output). */
    public boolean clipsOutput() {
        return outputMin > Double.NEGATIVE_INFINITY || outputMax < Double.POSITIVE_INFINITY;
    }

    /** The same problem reconstructing another target Yᵀ [columns, outChannels] (e.g. FP outputs for quantized inputs). */
    public AdaRoundProblem withTarget(float[] newTarget) {
        return new AdaRoundProblem(layer, weightShape, layout, weight, outChannels, depth, groups, bias, scale,
                zeroPoint, qmin, qmax, inputs, columns, newTarget, outputMin, outputMax);
    }

    // ---------------------------------------------------------------------------------------------
    // From layer tensors

    /**
     * A Conv layer: x [N,C,H,W] (the layer's input, FP or quantized as configured), w [K,C/group,kh,kw],
     * b [K] or null, per-tensor or per-channel (axis 0) weight parameters. The columns are every output
     * position of every sample ({@link ConvForward#patches}); subsample x beforehand to bound them.
     */
    public static AdaRoundProblem conv(String layer, INDArray x, INDArray w, INDArray b, ConvSpec spec, QuantParams wq,
                                       boolean reluOutput) {
        checkAxis(layer, wq, 0, "Conv weight [K, C/group, kh, kw]");
        int group = spec.group();
        long[] ws = w.shape();
        int depth = (int) (ws[1] * ws[2] * ws[3]);
        INDArray[] p = ConvForward.patches(x, ws, spec);        // each [depth, M]
        INDArray stacked = group == 1 ? p[0] : Nd4j.vstack(p);  // [group·depth, M]
        int columns = (int) stacked.size(1);
        float[] inputs = stacked.castTo(DataType.FLOAT).dup('f').data().asFloat(); // column-major X = row-major Xᵀ
        float[] weight = w.castTo(DataType.FLOAT).dup('c').data().asFloat();     // row-major [K, depth] per group rows
        return new AdaRoundProblem(layer, ws, false, weight, (int) ws[0], depth, group, floats(b), wq.scale(), wq.zeroPoint(),
                wq.qmin(), wq.qmax(), inputs, columns, null, reluOutput);
    }

    /**
     * A Gemm layer y = x·w + b (x·wᵀ + b with transB): x [N,K], w [K,M] or [M,K], b [M] or null; per-channel
     * weight parameters along the output axis (1 without transB, 0 with). Each row of x is one column of X.
     */
    public static AdaRoundProblem gemm(String layer, INDArray x, INDArray w, INDArray b, boolean transB, QuantParams wq,
                                       boolean reluOutput) {
        if (x.rank() != 2 || w.rank() != 2) {
            throw new IllegalArgumentException("AdaRound Gemm layer " + layer + ": x and w must be matrices, got "
                    + Arrays.toString(x.shape()) + " and " + Arrays.toString(w.shape()));
        }
        checkAxis(layer, wq, transB ? 0 : 1, transB ? "Gemm weight [M, K] (transB)" : "Gemm/MatMul weight [K, M]");
        long k = x.size(1);
        long wk = transB ? w.size(1) : w.size(0);
        if (wk != k) {
            throw new IllegalArgumentException("AdaRound Gemm layer " + layer + ": input " + Arrays.toString(x.shape())
                    + " and weight " + Arrays.toString(w.shape()) + " disagree on K");
        }
        INDArray wm = transB ? w : w.transpose();
        float[] weight = wm.castTo(DataType.FLOAT).dup('c').data().asFloat();
        float[] inputs = x.castTo(DataType.FLOAT).dup('c').data().asFloat();
        return new AdaRoundProblem(layer, w.shape(), !transB, weight, (int) wm.size(0), (int) k, 1, floats(b), wq.scale(),
                wq.zeroPoint(), wq.qmin(), wq.qmax(), inputs, (int) x.size(0), null, reluOutput);
    }

    /** A MatMul layer with a constant weight w [K, M]: x [..., K], leading axes flattened into columns. */
    public static AdaRoundProblem matmul(String layer, INDArray x, INDArray w, INDArray b, QuantParams wq, boolean reluOutput) {
        long k = x.size(x.rank() - 1);
        return gemm(layer, x.reshape('c', x.length() / k, k), w, b, false, wq, reluOutput);
    }

    static void checkAxis(String layer, QuantParams wq, int axis, String what) {
        if (wq.perChannel() && wq.axis() != axis) {
            throw new IllegalArgumentException("AdaRound layer " + layer + ": per-channel weight parameters of a " + what
                    + " must be along axis " + axis + " (output channels), got axis " + wq.axis());
        }
    }

    private static float[] floats(INDArray a) {
        return a == null ? null : a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AdaRoundProblem p && java.util.Objects.equals(layer, p.layer)
                && Arrays.equals(weightShape, p.weightShape) && layout == p.layout
                && Arrays.equals(weight, p.weight) && outChannels == p.outChannels && depth == p.depth
                && groups == p.groups && Arrays.equals(bias, p.bias) && Arrays.equals(scale, p.scale)
                && Arrays.equals(zeroPoint, p.zeroPoint) && qmin == p.qmin && qmax == p.qmax
                && Arrays.equals(inputs, p.inputs) && columns == p.columns && Arrays.equals(target, p.target)
                && Double.compare(outputMin, p.outputMin) == 0 && Double.compare(outputMax, p.outputMax) == 0;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(layer, Arrays.hashCode(weightShape), Arrays.hashCode(weight), outChannels, depth,
                groups, Arrays.hashCode(scale), Arrays.hashCode(zeroPoint), qmin, qmax, columns, outputMin, outputMax);
    }

    @Override
    public String toString() {
        return "AdaRoundProblem[" + layer + ", W " + outChannels + "x" + depth + (groups > 1 ? " in " + groups + " groups" : "")
                + ", " + columns + " columns, q=[" + qmin + "," + qmax + "], " + (scale.length == 1 ? "per tensor" : "per channel")
                + (clipsOutput() ? ", output clipped to [" + outputMin + ", " + outputMax + "]" : "") + (target != null ? ", given target" : "") + "]";
    }
}
