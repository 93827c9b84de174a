package io.quantcal.kernels.adaround;

import io.quantcal.kernels.calib.SeededSubset;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.layer.WeightLayout;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The sampler of AdaRound's layer data (AIMET's {@code adaround_activation_sampler}): turns one sample's captured
 * layer input into that sample's columns of X, and a layer's columns into its {@link AdaRoundProblem}.
 *
 * <p>A sample's columns depend on the sample alone: Conv patches beyond {@code maxColumns} per sample are a
 * subsample seeded by (seed, layer, sample id), so the problem is the same however the samples were spread over
 * partitions, as long as the blocks are put together in sample order. The FP and the quantized input of the
 * same sample (asymmetric reconstruction, eq. 26) have the same shape and so get the same columns.
 */
public final class LayerSampler {

    private LayerSampler() {}

    /**
     * One sample's columns of X: Xᵀ rows [count, groups·depth] row-major; or, from {@link #target}, that sample's
     * rows of the FP target Yᵀ [count, outChannels].
     */
    public record Columns(long sample, int count, float[] values) implements Serializable {}

    /**
     * The columns sample {@code sample} contributes to layer {@code n}: its im2col patches (Conv; at most
     * {@code maxColumns}, a seeded subsample in position order), or its rows (Gemm; MatMul with leading axes
     * flattened).
     *
     * @param x the layer's input for this one sample (batch axis of size 1)
     */
    public static Columns columns(QuantizableNode n, long sample, FloatTensor x, int maxColumns, long seed) {
        if (maxColumns < 1) throw new IllegalArgumentException("maxColumns must be >= 1, got " + maxColumns);
        x = n.as2dInput(x); // a Conv1d as its Conv2d of height 1, a ConvTranspose as its Conv over the zero-inserted x
        n = n.as2d();
        if (x.dim(0) != 1) {
            throw new IllegalArgumentException("layer " + n.name() + ": the input " + x.name() + " of one sample needs batch 1, got "
                    + Arrays.toString(x.shape()));
        }
        if (LayerOp.of(n) instanceof LayerOp.Conv conv) {
            INDArray[] p = ConvForward.patches(Nd4j.create(x.data(), x.shape()), n.weightShape(), conv.spec());
            INDArray stacked = p.length == 1 ? p[0] : Nd4j.vstack(p);       // [group·depth, M]
            int rows = (int) stacked.size(0), m = (int) stacked.size(1);
            float[] all = stacked.castTo(DataType.FLOAT).dup('f').data().asFloat(); // column-major X = row-major Xᵀ
            if (m <= maxColumns) return new Columns(sample, m, all);
            int[] chosen = SeededSubset.choose(m, maxColumns, mix(seed, n.name(), sample));
            float[] sub = new float[maxColumns * rows];
            for (int i = 0; i < maxColumns; i++) System.arraycopy(all, chosen[i] * rows, sub, i * rows, rows);
            return new Columns(sample, maxColumns, sub);
        }
        // Gemm, MatMul: the rows of x (leading axes flattened)
        int k = (int) x.dim(x.rank() - 1);
        return new Columns(sample, x.data().length / k, x.data().clone());
    }

    /**
     * Layer {@code n}'s problem on {@code inputs} (in the order given: sort by sample first). With {@code fpInputs}
     * (the FP network's input, same samples, same columns) the target is Y = act(W X_fp + b) and X the given
     * inputs: the asymmetric reconstruction of eq. 26. Without, Y = act(W X + b) on X itself (eq. 25).
     *
     * @param clipOutput reconstruct the output after the layer's fused Relu / Clip ({@link QuantizableNode#clipMin()},
     *                   {@link QuantizableNode#clipMax()}); false: before it
     * @param batchColumns the optimizer's column batch, with which the FP target is computed
     */
    public static AdaRoundProblem problem(QuantizableNode n, float[] weight, float[] bias, QuantParams wq, List<Columns> inputs,
                                          List<Columns> fpInputs, boolean clipOutput, int batchColumns) {
        QuantizableNode onnx = n;
        n = n.as2d();
        if (inputs.isEmpty()) throw new IllegalArgumentException("layer " + n.name() + ": no captured columns");
        double lo = Double.NEGATIVE_INFINITY, hi = Double.POSITIVE_INFINITY;
        if (clipOutput && n.activation() != null) {
            lo = n.clipMin();
            hi = n.clipMax();
        }
        // the problem's rows W [outChannels, depth] per group, in the ONNX weight's layout (see OpKind.layout)
        AdaRoundProblem.checkAxis(n.name(), wq, onnx.weightAxis(), onnx.opType() + " weight " + java.util.Arrays.toString(onnx.weightShape())
                + " (output channels on axis " + onnx.weightAxis() + ")");
        WeightLayout layout = onnx.kind().layout(onnx);
        int outChannels = onnx.outputChannels();
        int depth = (int) onnx.kind().reductionLength(onnx);
        int groups = n.group();
        float[] w = layout.toRows(weight, outChannels, depth, onnx.weightShape());
        long[] ws = onnx.weightShape(); // results in the ONNX weight's shape and layout
        float[] x = concat(n, inputs);
        int columns = x.length / (groups * depth);
        float[] target = null;
        if (fpInputs != null) {
            float[] xf = concat(n, fpInputs);
            if (xf.length != x.length) {
                throw new IllegalArgumentException("layer " + n.name() + ": FP and quantized inputs differ in size ("
                        + xf.length + " vs " + x.length + " values)");
            }
            for (int i = 0; i < inputs.size(); i++) {
                if (inputs.get(i).sample() != fpInputs.get(i).sample()) {
                    throw new IllegalArgumentException("layer " + n.name() + ": FP and quantized inputs list different samples at "
                            + i + " (" + fpInputs.get(i).sample() + " vs " + inputs.get(i).sample() + ")");
                }
            }
            AdaRoundProblem fp = new AdaRoundProblem(n.name(), ws, layout, w, outChannels, depth, groups, bias, wq.scale(),
                    wq.zeroPoint(), wq.qmin(), wq.qmax(), xf, columns, null, lo, hi);
            target = AdaRoundLoss.floatingPointTarget(fp, batchColumns);
        }
        return new AdaRoundProblem(n.name(), ws, layout, w, outChannels, depth, groups, bias, wq.scale(), wq.zeroPoint(),
                wq.qmin(), wq.qmax(), x, columns, target, lo, hi);
    }

    /**
     * One sample's rows of the FP target, Yᵀ = act(W X_fp + b)ᵀ [count, outChannels], computed where the sample was
     * captured: for eq. 26 a layer's task then receives the target (outChannels values per column) instead of the
     * FP input (groups·depth values per column, e.g. 9× more for a 3×3 conv with as many outputs as inputs). A
     * sample's target rows depend on the sample alone.
     */
    public static Columns target(QuantizableNode n, float[] weight, float[] bias, QuantParams wq, Columns fpInput,
                                 boolean clipOutput, int batchColumns) {
        AdaRoundProblem fp = problem(n, weight, bias, wq, List.of(fpInput), null, clipOutput, batchColumns);
        return new Columns(fpInput.sample(), fpInput.count(), AdaRoundLoss.floatingPointTarget(fp, batchColumns));
    }

    /** {@code p} (built from {@code inputs}, in that order) reconstructing the per-sample {@link #target} rows. */
    public static AdaRoundProblem withTargets(AdaRoundProblem p, List<Columns> inputs, List<Columns> targets) {
        if (inputs.size() != targets.size()) {
            throw new IllegalArgumentException("layer " + p.layer() + ": " + inputs.size() + " input blocks but " + targets.size()
                    + " target blocks");
        }
        for (int i = 0; i < inputs.size(); i++) {
            Columns x = inputs.get(i), t = targets.get(i);
            if (x.sample() != t.sample() || x.count() != t.count() || t.values().length != (long) t.count() * p.outChannels()) {
                throw new IllegalArgumentException("layer " + p.layer() + ": target block " + i + " (sample " + t.sample() + ", "
                        + t.count() + " columns) does not match input block (sample " + x.sample() + ", " + x.count() + " columns)");
            }
        }
        long total = (long) p.columns() * p.outChannels();
        float[] y = new float[(int) total];
        int at = 0;
        for (Columns t : targets) {
            System.arraycopy(t.values(), 0, y, at, t.values().length);
            at += t.values().length;
        }
        return p.withTarget(y);
    }

    private static float[] concat(QuantizableNode n, List<Columns> blocks) {
        long total = 0;
        for (Columns c : blocks) total += c.values().length;
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("layer " + n.name() + ": " + total + " input values exceed 2^31; use fewer adaround.samples");
        }
        float[] x = new float[(int) total];
        int at = 0;
        for (Columns c : blocks) {
            System.arraycopy(c.values(), 0, x, at, c.values().length);
            at += c.values().length;
        }
        return x;
    }

    private static long mix(long seed, String layer, long sample) {
        long h = seed * 0x9E3779B97F4A7C15L + layer.hashCode();
        return h * 0xBF58476D1CE4E5B9L + sample;
    }
}
