package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * EasyQuant's inner loop (Wu et al. 2020, Eq. 3–4): for every candidate of a block, Σ_i cos(O_i, Ô_i) over
 * the chunk's samples, Ô_i the layer's output on fake-quantized input and weight. One call is one Spark task.
 *
 * <p>How the work is shared between candidates:
 * <ul>
 *   <li>the fixed side is fake-quantized once per task and step (all blocks of a step share it), and a Conv's
 *       im2col patch matrices of the fixed input with it; each candidate's side once per candidate;</li>
 *   <li>several candidates go through one gemm. Conv runs as im2col (Y_g = W_g·P_g, as
 *       {@link ConvForward#patches}): weight candidates stack their weight matrices into [B·K/g, C/g·kh·kw]
 *       against one patch matrix; activation candidates stack their quantized inputs into one [B·N, C, H, W]
 *       batch, so one patch matrix [C/g·kh·kw, B·N·OH·OW] meets the weight once. Gemm/MatMul stack
 *       weights as [B·M, K] (one product x̂·Ŵᵀ) or inputs as [B·rows, K];</li>
 *   <li>a block is cut into sub-blocks whose gemm output stays under {@link #MAX_GEMM_OUTPUT} floats.</li>
 * </ul>
 *
 * <p>Score: per-sample cosine over the sample's whole output (Metrics' convention: two zero vectors → 1,
 * one zero vector → 0), except for per-channel weight candidates, which score each output channel c of each
 * sample separately ([candidate][c]) — each channel's scale is searched against its own output (the output
 * channel c depends only on weight channel c). The bias is added in float, as {@link
 * io.quantcal.kernels.layer.LayerForward} does, and the fused activation applied when the problem's output
 * was captured after it.
 */
public final class CandidateEvaluation {

    /** Largest gemm output (and patch matrix) per sub-block, in floats: 16 M floats = 64 MB. */
    public static final long MAX_GEMM_OUTPUT = 1L << 24;

    private CandidateEvaluation() {}

    public static CandidateScores evaluate(LayerProblem p, CandidateBlock block) {
        return evaluate(p, List.of(block), MAX_GEMM_OUTPUT).get(0);
    }

    /**
     * One task's blocks of a step, in order: the same scores as evaluating each block alone, with the fixed side
     * prepared once for consecutive blocks that share it (the fake-quantized fixed input or weight and, for a Conv's
     * weight side, its im2col patch matrices while they fit in {@link #MAX_GEMM_OUTPUT} floats together): a step's
     * blocks all search one side against the same fixed scales, so im2col runs once per step, not once per block.
     */
    public static List<CandidateScores> evaluate(LayerProblem p, List<CandidateBlock> blocks) {
        return evaluate(p, blocks, MAX_GEMM_OUTPUT);
    }

    /** {@link #evaluate(LayerProblem, List)} with another sub-block limit (tests use a small one). */
    static List<CandidateScores> evaluate(LayerProblem p, List<CandidateBlock> blocks, long maxGemmOutput) {
        List<CandidateScores> out = new ArrayList<>(blocks.size());
        Prepared prepared = null;
        try {
            for (CandidateBlock b : blocks) {
                check(p, b);
                if (prepared == null || !prepared.serves(b)) {
                    if (prepared != null) prepared.close();
                    prepared = new Prepared(p, b, maxGemmOutput);
                }
                out.add(evaluate(p, b, maxGemmOutput, prepared));
            }
        } finally {
            if (prepared != null) prepared.close();
        }
        return out;
    }

    private static void check(LayerProblem p, CandidateBlock block) {
        boolean weightSide = block.side() == SearchSide.WEIGHT;
        int expectFixed = weightSide ? 1 : p.weight().channels();
        int expectCand = weightSide ? p.weight().channels() : 1;
        if (block.fixed().length != expectFixed || block.candidate(0).length != expectCand) {
            throw new IllegalArgumentException("layer " + p.layer() + ": a " + block.side() + " block needs " + expectFixed
                    + " fixed scale(s) and " + expectCand + " scale(s) per candidate, got " + block.fixed().length
                    + " and " + block.candidate(0).length);
        }
    }

    /** The fixed side of a block, fake-quantized (and for a Conv's weight side, its patch matrices) once. */
    static final class Prepared implements AutoCloseable {
        final SearchSide side;
        final double[] fixed;
        final float[] xh, wh;      // weight side: the quantized input; activation side: the quantized weight
        private final INDArray x;  // xh as [N, C, H, W] (Conv weight side)
        private final INDArray[] patches;
        private final boolean keep;

        Prepared(LayerProblem p, CandidateBlock b, long maxGemmOutput) {
            side = b.side();
            fixed = b.fixed().clone();
            if (side == SearchSide.WEIGHT) {
                xh = FakeQuant.apply(p.x(), p.xs(), p.activation().withScales(fixed));
                wh = null;
                Shapes s = new Shapes(p);
                x = s.conv ? Nd4j.create(xh, s.xShape, 'c') : null;
                patches = s.conv ? new INDArray[s.groups] : null;
                keep = s.conv && (long) s.groups * s.r * s.n * s.positions <= maxGemmOutput;
            } else {
                wh = FakeQuant.apply(p.w(), p.ws(), p.weight().withScales(fixed));
                xh = null;
                x = null;
                patches = null;
                keep = false;
            }
        }

        boolean serves(CandidateBlock b) {
            return b.side() == side && java.util.Arrays.equals(b.fixed(), fixed);
        }

        /** Group g's patch matrix of the quantized input; the caller closes it unless {@link #kept}. */
        INDArray patches(Shapes s, int g) {
            if (patches[g] != null) return patches[g];
            INDArray pm = ConvForward.patches(x, s.wShape, s.spec, g);
            if (keep) patches[g] = pm;
            return pm;
        }

        boolean kept() {
            return keep;
        }

        @Override
        public void close() {
            if (patches != null) for (INDArray a : patches) if (a != null) a.close();
            if (x != null) x.close();
        }
    }

    private static CandidateScores evaluate(LayerProblem p, CandidateBlock block, long maxGemmOutput, Prepared prepared) {
        boolean weightSide = block.side() == SearchSide.WEIGHT;
        QuantParams wTemplate = p.weight(), aTemplate = p.activation();
        Shapes s = new Shapes(p);
        boolean perChannel = weightSide && wTemplate.perChannel();
        Accumulator acc = new Accumulator(block.size(), s.n, perChannel ? s.channels : 1, p, s);
        if (weightSide) {
            float[] xh = prepared.xh;
            int sub = (int) Math.max(1, Math.min(block.size(), maxGemmOutput / Math.max(1, s.weightSideOutputPerCandidate())));
            for (int b0 = 0; b0 < block.size(); b0 += sub) {
                int bs = Math.min(sub, block.size() - b0);
                float[][] wh = new float[bs][];
                for (int i = 0; i < bs; i++) wh[i] = FakeQuant.apply(p.w(), p.ws(), wTemplate.withScales(block.candidate(b0 + i)));
                if (s.conv) convWeightCandidates(s, prepared, wh, acc, b0);
                else gemmWeightCandidates(s, xh, wh, acc, b0);
            }
        } else {
            float[] wh = prepared.wh;
            int sub = (int) Math.max(1, Math.min(block.size(), maxGemmOutput / Math.max(1, s.activationSidePerCandidate())));
            for (int b0 = 0; b0 < block.size(); b0 += sub) {
                int bs = Math.min(sub, block.size() - b0);
                float[] xs = new float[bs * p.x().length];
                for (int i = 0; i < bs; i++) {
                    float[] xh = FakeQuant.apply(p.x(), p.xs(), aTemplate.withScales(block.candidate(b0 + i)));
                    System.arraycopy(xh, 0, xs, i * xh.length, xh.length);
                }
                if (s.conv) convActivationCandidates(s, xs, bs, wh, acc, b0);
                else gemmActivationCandidates(s, xs, bs, wh, acc, b0);
            }
        }
        return new CandidateScores(p.sampleIds(), acc.cosineSums());
    }

    // ---------------------------------------------------------------------------------------------
    // Conv: Y_g = W_g · P_g, W_g [K/g, R], P_g [R, N·P], R = C/g·kh·kw, P = OH·OW

    private static void convWeightCandidates(Shapes s, Prepared prepared, float[][] wh, Accumulator acc, int b0) {
        int bs = wh.length;
        for (int g = 0; g < s.groups; g++) {
            INDArray patches = prepared.patches(s, g);
            float[] stack = new float[bs * s.kg * s.r];
            for (int i = 0; i < bs; i++) System.arraycopy(wh[i], g * s.kg * s.r, stack, i * s.kg * s.r, s.kg * s.r);
            INDArray w = Nd4j.create(stack, new long[] {(long) bs * s.kg, s.r}, 'c');
            INDArray y = mmul(w, patches, false, (long) bs * s.kg, (long) s.n * s.positions);
            FloatBuffer yb = y.data().asNioFloat();
            long cols = (long) s.n * s.positions;
            for (int i = 0; i < bs; i++) {
                for (int kk = 0; kk < s.kg; kk++) {
                    int ch = g * s.kg + kk;
                    for (int n = 0; n < s.n; n++) {
                        acc.addRun(b0 + i, n, ch, yb, (int) ((i * s.kg + kk) * cols + (long) n * s.positions),
                                (n * s.channels + ch) * s.positions);
                    }
                }
            }
            close(w, y);
            if (!prepared.kept()) patches.close();
        }
    }

    private static void convActivationCandidates(Shapes s, float[] xs, int bs, float[] wh, Accumulator acc, int b0) {
        long[] shape = s.xShape.clone();
        shape[0] *= bs;
        INDArray x = Nd4j.create(xs, shape, 'c');
        try {
            long cols = (long) bs * s.n * s.positions;
            for (int g = 0; g < s.groups; g++) {
                INDArray patches = ConvForward.patches(x, s.wShape, s.spec, g);
                float[] wg = new float[s.kg * s.r];
                System.arraycopy(wh, g * s.kg * s.r, wg, 0, wg.length);
                INDArray w = Nd4j.create(wg, new long[] {s.kg, s.r}, 'c');
                INDArray y = mmul(w, patches, false, s.kg, cols);
                FloatBuffer yb = y.data().asNioFloat();
                for (int i = 0; i < bs; i++) {
                    for (int kk = 0; kk < s.kg; kk++) {
                        int ch = g * s.kg + kk;
                        for (int n = 0; n < s.n; n++) {
                            acc.addRun(b0 + i, n, ch, yb, (int) (kk * cols + ((long) i * s.n + n) * s.positions),
                                    (n * s.channels + ch) * s.positions);
                        }
                    }
                }
                close(patches, w, y);
            }
        } finally {
            x.close();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Gemm / MatMul: rows = N·S (S = positions per sample), Y = X̂ · Ŵcᵀ with Ŵc the weight as [M, K]

    private static void gemmWeightCandidates(Shapes s, float[] xh, float[][] wh, Accumulator acc, int b0) {
        int bs = wh.length;
        float[] stack = new float[bs * s.m * s.k];
        for (int i = 0; i < bs; i++) s.toOutputMajor(wh[i], stack, i * s.m * s.k);
        INDArray x = Nd4j.create(xh, new long[] {s.rows, s.k}, 'c');
        INDArray w = Nd4j.create(stack, new long[] {(long) bs * s.m, s.k}, 'c');
        INDArray y = mmul(x, w, true, s.rows, (long) bs * s.m);
        FloatBuffer yb = y.data().asNioFloat();
        int width = bs * s.m;
        for (int n = 0; n < s.n; n++) {
            for (int q = 0; q < s.positions; q++) {
                int row = n * s.positions + q;
                for (int i = 0; i < bs; i++) acc.addRow(b0 + i, n, yb, row * width + i * s.m, row * s.m);
            }
        }
        close(x, w, y);
    }

    private static void gemmActivationCandidates(Shapes s, float[] xs, int bs, float[] wh, Accumulator acc, int b0) {
        float[] wc = new float[s.m * s.k];
        s.toOutputMajor(wh, wc, 0);
        INDArray x = Nd4j.create(xs, new long[] {(long) bs * s.rows, s.k}, 'c');
        INDArray w = Nd4j.create(wc, new long[] {s.m, s.k}, 'c');
        INDArray y = mmul(x, w, true, (long) bs * s.rows, s.m);
        FloatBuffer yb = y.data().asNioFloat();
        for (int i = 0; i < bs; i++) {
            for (int n = 0; n < s.n; n++) {
                for (int q = 0; q < s.positions; q++) {
                    int row = n * s.positions + q;
                    acc.addRow(b0 + i, n, yb, (i * s.rows + row) * s.m, row * s.m);
                }
            }
        }
        close(x, w, y);
    }

    /** a·b (a·bᵀ with transB) into a new row-major [rows, cols] float array. */
    static INDArray mmul(INDArray a, INDArray b, boolean transB, long rows, long cols) {
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, new long[] {rows, cols}, 'c');
        Nd4j.exec(new Mmul(a, b, y, 1.0, 0.0, new MMulTranspose(false, transB, false)));
        return y;
    }

    private static void close(INDArray... arrays) {
        for (INDArray a : arrays) a.close();
    }

    /** The problem's dimensions in the im2col / row-matrix view. */
    static final class Shapes {
        final boolean conv, transB;
        final long[] xShape, wShape;
        final ConvSpec spec;
        final int n, channels, positions;          // samples, output channels, output positions per sample and channel
        final int groups, kg, r;                   // Conv
        final int rows, k, m;                      // Gemm / MatMul

        Shapes(LayerProblem p) {
            xShape = p.xs();
            wShape = p.ws();
            long[] o = p.os();
            n = (int) o[0];
            conv = p.op() instanceof LayerOp.Conv;
            transB = p.op() instanceof LayerOp.Gemm g && g.transB();
            if (conv) {
                spec = ((LayerOp.Conv) p.op()).spec();
                channels = (int) o[1];
                positions = (int) (o[2] * o[3]);
                groups = spec.group();
                kg = channels / groups;
                r = (int) (wShape[1] * wShape[2] * wShape[3]);
                rows = k = m = 0;
            } else {
                spec = null;
                channels = (int) o[o.length - 1];
                m = channels;
                k = (int) xShape[xShape.length - 1];
                rows = (int) (p.x().length / k);
                positions = rows / n;
                groups = kg = r = 0;
            }
        }

        long weightSideOutputPerCandidate() {
            return conv ? (long) kg * n * positions : (long) rows * m;
        }

        long activationSidePerCandidate() {
            return conv ? (long) Math.max(r, kg) * n * positions : (long) rows * Math.max(k, m);
        }

        /** Copies a Gemm/MatMul weight into dst as [M, K] row-major (transposing [K, M]). */
        void toOutputMajor(float[] w, float[] dst, int at) {
            if (transB) {
                System.arraycopy(w, 0, dst, at, m * k);
                return;
            }
            for (int kk = 0; kk < k; kk++) {
                for (int mm = 0; mm < m; mm++) dst[at + mm * k + kk] = w[kk * m + mm];
            }
        }
    }

    /** Σ ŷ·o, Σ o², Σ ŷ² per (candidate, sample, channel-or-0), then Σ_i cos in sample order. */
    static final class Accumulator {
        final int candidates, n, cols;
        final double[] ab, aa, bb;
        final float[] o, bias;
        final Activation act;
        final Shapes s;

        Accumulator(int candidates, int n, int cols, LayerProblem p, Shapes s) {
            this.candidates = candidates;
            this.n = n;
            this.cols = cols;
            int size = candidates * n * cols;
            ab = new double[size];
            aa = new double[size];
            bb = new double[size];
            o = p.output();
            bias = p.bias();
            act = p.outputAfterActivation() ? p.op().activation() : Activation.NONE;
            this.s = s;
        }

        private float bias(int ch) {
            return bias == null ? 0f : bias.length == 1 ? bias[0] : bias[ch];
        }

        /** A contiguous run of s.positions outputs of channel ch of sample n (Conv layout). */
        void addRun(int cand, int n, int ch, FloatBuffer y, int yFrom, int oFrom) {
            float b = bias(ch);
            double sab = 0, saa = 0, sbb = 0;
            for (int q = 0; q < s.positions; q++) {
                double yh = activate(y.get(yFrom + q) + b);
                double ov = o[oFrom + q];
                sab += yh * ov;
                saa += ov * ov;
                sbb += yh * yh;
            }
            int at = (cand * this.n + n) * cols + (cols == 1 ? 0 : ch);
            ab[at] += sab;
            aa[at] += saa;
            bb[at] += sbb;
        }

        /** One output row of s.m channels (Gemm layout). */
        void addRow(int cand, int n, FloatBuffer y, int yFrom, int oFrom) {
            int base = (cand * this.n + n) * cols;
            if (cols == 1) {
                double sab = 0, saa = 0, sbb = 0;
                for (int c = 0; c < s.m; c++) {
                    double yh = activate(y.get(yFrom + c) + bias(c));
                    double ov = o[oFrom + c];
                    sab += yh * ov;
                    saa += ov * ov;
                    sbb += yh * yh;
                }
                ab[base] += sab;
                aa[base] += saa;
                bb[base] += sbb;
                return;
            }
            for (int c = 0; c < s.m; c++) {
                double yh = activate(y.get(yFrom + c) + bias(c));
                double ov = o[oFrom + c];
                ab[base + c] += yh * ov;
                aa[base + c] += ov * ov;
                bb[base + c] += yh * yh;
            }
        }

        private float activate(float v) {
            return switch (act.kind()) {
                case NONE -> v;
                case RELU -> v > 0 ? v : 0f;
                case CLIP -> Math.min(Math.max(v, act.min()), act.max());
            };
        }

        double[][] cosineSums() {
            double[][] out = new double[candidates][cols];
            for (int c = 0; c < candidates; c++) {
                for (int i = 0; i < n; i++) {       // sample order
                    for (int k = 0; k < cols; k++) {
                        int at = (c * n + i) * cols + k;
                        out[c][k] += cosine(ab[at], aa[at], bb[at]);
                    }
                }
            }
            return out;
        }
    }

    /** Metrics' cosine convention: both zero → 1, one zero → 0, clamped to [−1, 1]. */
    static double cosine(double ab, double aa, double bb) {
        if (aa == 0 && bb == 0) return 1.0;
        if (aa == 0 || bb == 0) return 0.0;
        return Math.max(-1.0, Math.min(1.0, ab / (Math.sqrt(aa) * Math.sqrt(bb))));
    }
}
