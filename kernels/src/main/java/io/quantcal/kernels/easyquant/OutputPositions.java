package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.calib.SeededSubset;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Spatial subsampling of a Conv layer's search data: keep a few output positions per sample instead of the
 * whole feature map (the capture of a large layer, and every candidate gemm, shrink by the same factor).
 *
 * <p>A kept output position needs its receptive field, not the whole input, so the subsampled problem stores
 * the im2col patches of the kept positions and becomes a MatMul problem: x [N, P, C·kh·kw] (rows ordered
 * (c, ky, kx), zero where a tap falls in the padding), w [C·kh·kw, K], O [N, P, K]. Grouped and depthwise
 * convolutions get the block-diagonal dense weight (zero outside a channel's group). Both rewrites are exact
 * under fake quantization: quantizing x and then taking patches equals taking patches and then quantizing,
 * because real 0 (the padding, and the off-group weights) is exactly representable on every quantcal grid
 * (ranges are widened to include 0, so 0 maps to the zero point and back to 0). The weight's per-channel axis
 * moves from 0 (Conv) to 1 (MatMul); the scales are the same numbers, so a search result maps back unchanged.
 *
 * <p>Which positions: per sample, {@code positions} distinct ones drawn by a generator seeded from
 * (seed, sample id) only, so a sample keeps the same positions whatever chunk or partition it lands in.
 */
public final class OutputPositions {

    private OutputPositions() {}

    /**
     * The problem on at most {@code positions} output positions per sample; unchanged when it is not a Conv or
     * its feature map has no more positions than that.
     */
    public static LayerProblem subsample(LayerProblem p, int positions, long seed) {
        if (positions < 1) throw new IllegalArgumentException("OutputPositions: positions must be >= 1, got " + positions);
        if (!(p.op() instanceof LayerOp.Conv)) return p;
        long[] os = p.outputShape();
        int hw = (int) (os[2] * os[3]);
        if (positions >= hw) return p;
        long[] ids = p.sampleIds();
        int[][] keep = new int[ids.length][];
        for (int s = 0; s < ids.length; s++) keep[s] = choose(hw, positions, seed, ids[s]);
        return asPatches(p, keep);
    }

    /** {@code k} distinct positions of {@code n}, ascending, drawn by a generator seeded by (seed, sample id). */
    static int[] choose(int n, int k, long seed, long sampleId) {
        return SeededSubset.choose(n, k, seed * 0x9E3779B97F4A7C15L + sampleId);
    }

    /** The Conv problem as a MatMul problem over the given output positions (oy·OW + ox) of each sample. */
    static LayerProblem asPatches(LayerProblem p, int[][] keep) {
        LayerOp.Conv conv = (LayerOp.Conv) p.op();
        ConvSpec spec = conv.spec();
        long[] xs = p.xShape(), ws = p.wShape(), os = p.outputShape();
        int n = (int) xs[0], group = spec.group();
        int k = (int) ws[0], cg = (int) ws[1], taps = (int) (ws[2] * ws[3]);
        int kg = k / group, rowsPerGroup = cg * taps, depth = group * rowsPerGroup;
        int hw = (int) (os[2] * os[3]);
        int per = keep.length == 0 ? 0 : keep[0].length;
        for (int[] kp : keep) {
            if (kp.length != per) throw new IllegalArgumentException("OutputPositions: every sample needs the same number of positions");
        }
        float[] x = new float[n * per * depth];
        float[] o = new float[n * per * k];
        int xin = (int) (xs[1] * xs[2] * xs[3]);
        float[] out = p.output();
        for (int s = 0; s < n; s++) {
            INDArray xsample = Nd4j.create(Arrays.copyOfRange(p.x(), s * xin, (s + 1) * xin), new long[] {1, xs[1], xs[2], xs[3]}, 'c');
            for (int g = 0; g < group; g++) {
                // [cg·kh·kw, OH·OW] for this sample: row r of group g goes to column g·rowsPerGroup + r
                float[] pg = ConvForward.patches(xsample, ws, spec, g).dup('c').data().asFloat();
                for (int r = 0; r < rowsPerGroup; r++) {
                    for (int i = 0; i < per; i++) {
                        x[(s * per + i) * depth + g * rowsPerGroup + r] = pg[r * hw + keep[s][i]];
                    }
                }
            }
            for (int c = 0; c < k; c++) {
                for (int i = 0; i < per; i++) o[(s * per + i) * k + c] = out[(s * k + c) * hw + keep[s][i]];
            }
        }
        // dense [depth, K]: column c holds channel c's filter in its group's rows, zero elsewhere
        float[] w = new float[depth * k];
        float[] wc = p.w();
        for (int c = 0; c < k; c++) {
            int g = c / kg;
            for (int r = 0; r < rowsPerGroup; r++) w[(g * rowsPerGroup + r) * k + c] = wc[c * rowsPerGroup + r];
        }
        QuantParams wq = p.weight();
        QuantParams wm = wq.perChannel() ? new QuantParams(wq.grid(), wq.symmetric(), 1, wq.scale(), wq.zeroPoint()) : wq;
        return new LayerProblem(p.layer(), p.sampleIds(), x, new long[] {n, per, depth}, o, new long[] {n, per, k},
                p.outputAfterActivation(), w, new long[] {depth, k}, p.bias(), new LayerOp.MatMul(conv.activation()),
                p.activation(), wm);
    }
}
