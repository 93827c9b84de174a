package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import java.nio.FloatBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 *       weights as [B·M, K] (transB: one product x̂·Ŵᵀ) or [K, B·M] (x̂·Ŵ), or inputs as [B·rows, K];</li>
 *   <li>a block is cut into sub-blocks whose gemm output and stacked weights stay under {@link #SUB_BLOCK} floats
 *       (or the given limit, when smaller);</li>
 *   <li>the ND4J arrays and Java arrays of a sub-block are reused by the next ({@link Buffers}), filled by bulk
 *       copies.</li>
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

    /** Largest patch matrices a step keeps for all its blocks, in floats: 16 M floats = 64 MB. */
    public static final long MAX_GEMM_OUTPUT = 1L << 24;

    /**
     * Largest gemm output (or stacked side) per sub-block, in floats: 4 M floats = 16 MB. Smaller sub-blocks keep a
     * candidate's data in cache between its fake quantization, its gemm and its scoring, and their buffers are
     * quicker to allocate: on ResNet-18's shapes at 224 (positions 64) the activation step took 1.0-1.8× less time
     * than with 64 MB sub-blocks, the weight step from 5% more to 1.2× less.
     */
    static final long SUB_BLOCK = 1L << 22;

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
        try (Buffers buffers = new Buffers()) {
            for (CandidateBlock b : blocks) {
                check(p, b);
                if (prepared == null || !prepared.serves(b)) {
                    if (prepared != null) prepared.close();
                    prepared = new Prepared(p, b, maxGemmOutput);
                }
                out.add(evaluate(p, b, maxGemmOutput, prepared, buffers));
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

    /**
     * The ND4J arrays and Java arrays one evaluate call reuses from sub-block to sub-block: a native buffer costs an
     * allocation (zero-filled, page-faulted in) and an element-by-element copy when made from a float[] with
     * {@code Nd4j.create}; at 224×224 that cost more than the gemms. Arrays are kept by slot and shape and filled
     * by one bulk copy.
     */
    static final class Buffers implements AutoCloseable {
        /** Per slot, the arrays of its last two shapes (a block's last sub-block is smaller than the others). */
        private final Map<String, ArrayDeque<INDArray>> arrays = new HashMap<>();
        private final Map<String, float[]> floats = new HashMap<>();

        /** A c-order float array of this shape for this slot (contents undefined). */
        INDArray array(String slot, long... shape) {
            ArrayDeque<INDArray> kept = arrays.computeIfAbsent(slot, k -> new ArrayDeque<>(2));
            for (INDArray a : kept) if (Arrays.equals(a.shape(), shape)) return a;
            if (kept.size() == 2) kept.removeFirst().close();
            INDArray a = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
            kept.addLast(a);
            return a;
        }

        /** A Java array of at least {@code length} floats for this slot (contents undefined). */
        float[] floats(String slot, long length) {
            if (length > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("easyquant: a sub-block needs " + length + " floats, more than a Java array holds");
            }
            float[] f = floats.get(slot);
            if (f == null || f.length < length) {
                f = new float[(int) length];
                floats.put(slot, f);
            }
            return f;
        }

        @Override
        public void close() {
            for (ArrayDeque<INDArray> kept : arrays.values()) for (INDArray a : kept) a.close();
            arrays.clear();
        }
    }

    /** Copies {@code length} floats of {@code src} from {@code from} into the start of {@code a}'s buffer, in one bulk copy. */
    static void write(INDArray a, float[] src, int from, int length) {
        a.data().asNioFloat().put(0, src, from, length);
    }

    /** The fixed side of a block, fake-quantized (and as ND4J arrays: a Conv's patch matrices, a Gemm's matrix) once. */
    static final class Prepared implements AutoCloseable {
        final SearchSide side;
        final double[] fixed;
        final float[] xh, wh;      // weight side: the quantized input; activation side: the quantized weight
        private final INDArray x;  // xh as [N, C, H, W] (Conv weight side)
        private final INDArray[] patches;
        private final boolean keep;
        private INDArray matrix;           // Gemm: xh as [rows, K] (weight side) or wh as stored (activation side)
        private final INDArray[] weightGroups;  // Conv activation side: group g's quantized weight [K/g, R]

        Prepared(LayerProblem p, CandidateBlock b, long maxGemmOutput) {
            side = b.side();
            fixed = b.fixed().clone();
            Shapes s = new Shapes(p);
            if (side == SearchSide.WEIGHT) {
                xh = FakeQuant.apply(p.x(), p.xs(), p.activation().withScales(fixed));
                wh = null;
                x = s.conv && !s.depthwise ? Nd4j.createUninitialized(DataType.FLOAT, s.xShape, 'c') : null;
                if (x != null) write(x, xh, 0, xh.length);
                patches = s.conv ? new INDArray[s.groups] : null;
                keep = s.conv && (long) s.groups * s.r * s.n * s.positions <= maxGemmOutput;
                weightGroups = null;
            } else {
                wh = FakeQuant.apply(p.w(), p.ws(), p.weight().withScales(fixed));
                xh = null;
                x = null;
                patches = null;
                keep = false;
                weightGroups = s.conv ? new INDArray[s.groups] : null;
            }
        }

        boolean serves(CandidateBlock b) {
            return b.side() == side && java.util.Arrays.equals(b.fixed(), fixed);
        }

        /**
         * Group g's patch matrix of the quantized input: kept for the whole step when all groups' fit in the sub-block
         * limit together, otherwise made again into a reused buffer.
         */
        INDArray patches(Shapes s, int g, Buffers buffers) {
            if (patches[g] != null) return patches[g];
            if (!keep) return ConvForward.patches(x, s.wShape, s.spec, g, buffers.array("patches", s.r, (long) s.n * s.positions));
            patches[g] = ConvForward.patches(x, s.wShape, s.spec, g);
            return patches[g];
        }

        /** Gemm/MatMul: the quantized input as [rows, K] (weight side), or the quantized weight as stored (activation side). */
        INDArray matrix(Shapes s) {
            if (matrix == null) {
                long[] shape = side == SearchSide.WEIGHT ? new long[] {s.rows, s.k} : s.wShape;
                matrix = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
                float[] src = side == SearchSide.WEIGHT ? xh : wh;
                write(matrix, src, 0, src.length);
            }
            return matrix;
        }

        /** Conv activation side: group g's rows of the quantized weight, [K/g, C/g·kh·kw]. */
        INDArray weightGroup(Shapes s, int g) {
            if (weightGroups[g] == null) {
                weightGroups[g] = Nd4j.createUninitialized(DataType.FLOAT, new long[] {s.kg, s.r}, 'c');
                write(weightGroups[g], wh, g * s.kg * s.r, s.kg * s.r);
            }
            return weightGroups[g];
        }

        @Override
        public void close() {
            if (patches != null) for (INDArray a : patches) if (a != null) a.close();
            if (weightGroups != null) for (INDArray a : weightGroups) if (a != null) a.close();
            if (x != null) x.close();
            if (matrix != null) matrix.close();
        }
    }

    private static CandidateScores evaluate(LayerProblem p, CandidateBlock block, long maxGemmOutput, Prepared prepared,
                                            Buffers buffers) {
        boolean weightSide = block.side() == SearchSide.WEIGHT;
        QuantParams wTemplate = p.weight(), aTemplate = p.activation();
        Shapes s = new Shapes(p);
        boolean perChannel = weightSide && wTemplate.perChannel();
        Accumulator acc = new Accumulator(block.size(), s.n, perChannel ? s.channels : 1, p, s);
        long limit = Math.min(SUB_BLOCK, maxGemmOutput);
        if (weightSide) {
            int wlen = p.w().length;
            int sub = (int) Math.max(1, Math.min(block.size(), limit / Math.max(1, s.weightSidePerCandidate())));
            for (int b0 = 0; b0 < block.size(); b0 += sub) {
                int bs = Math.min(sub, block.size() - b0);
                float[] cand = buffers.floats("candidates", (long) bs * wlen);
                for (int i = 0; i < bs; i++) {
                    FakeQuant.applyInto(p.w(), p.ws(), wTemplate.withScales(block.candidate(b0 + i)), cand, i * wlen);
                }
                if (s.depthwise) depthwiseCandidates(s, prepared.xh, 0, cand, wlen, bs, acc, b0, buffers);
                else if (s.blockDiagonal > 0) blockDiagonalCandidates(s, prepared.xh, 0, cand, wlen, bs, acc, b0, buffers);
                else if (s.conv) convWeightCandidates(s, prepared, cand, bs, acc, b0, buffers);
                else gemmWeightCandidates(s, prepared, cand, bs, acc, b0, buffers);
            }
        } else {
            int xlen = p.x().length;
            int sub = (int) Math.max(1, Math.min(block.size(), limit / Math.max(1, s.activationSidePerCandidate())));
            for (int b0 = 0; b0 < block.size(); b0 += sub) {
                int bs = Math.min(sub, block.size() - b0);
                float[] xs = buffers.floats("candidates", (long) bs * xlen);
                for (int i = 0; i < bs; i++) {
                    FakeQuant.applyInto(p.x(), p.xs(), aTemplate.withScales(block.candidate(b0 + i)), xs, i * xlen);
                }
                if (s.depthwise) depthwiseCandidates(s, xs, xlen, prepared.wh, 0, bs, acc, b0, buffers);
                else if (s.blockDiagonal > 0) blockDiagonalCandidates(s, xs, xlen, prepared.wh, 0, bs, acc, b0, buffers);
                else if (s.conv) convActivationCandidates(s, prepared, xs, bs, acc, b0, buffers);
                else gemmActivationCandidates(s, prepared, xs, bs, acc, b0, buffers);
            }
        }
        return new CandidateScores(p.sampleIds(), acc.cosineSums());
    }

    // ---------------------------------------------------------------------------------------------
    // Conv: Y_g = W_g · P_g, W_g [K/g, R], P_g [R, N·P], R = C/g·kh·kw, P = OH·OW

    /** cand: bs quantized weights [K, C/g, kh, kw], one after another. */
    private static void convWeightCandidates(Shapes s, Prepared prepared, float[] cand, int bs, Accumulator acc, int b0,
                                             Buffers buffers) {
        int wlen = s.channels * s.r, part = s.kg * s.r;
        long cols = (long) s.n * s.positions;
        for (int g = 0; g < s.groups; g++) {
            INDArray patches = prepared.patches(s, g, buffers);
            INDArray w = buffers.array("w", (long) bs * s.kg, s.r);
            if (s.groups == 1) {
                write(w, cand, 0, bs * part);
            } else {
                float[] stack = buffers.floats("stack", (long) bs * part);
                for (int i = 0; i < bs; i++) System.arraycopy(cand, i * wlen + g * part, stack, i * part, part);
                write(w, stack, 0, bs * part);
            }
            INDArray y = buffers.array("y", (long) bs * s.kg, cols);
            mmulInto(w, patches, false, y);
            FloatBuffer yb = y.data().asNioFloat();
            for (int i = 0; i < bs; i++) {
                for (int kk = 0; kk < s.kg; kk++) {
                    int ch = g * s.kg + kk;
                    for (int n = 0; n < s.n; n++) {
                        acc.addRun(b0 + i, n, ch, yb, (int) ((i * s.kg + kk) * cols + (long) n * s.positions),
                                (n * s.channels + ch) * s.positions);
                    }
                }
            }
        }
    }

    /** xs: bs quantized inputs [N, C, H, W], one after another. */
    private static void convActivationCandidates(Shapes s, Prepared prepared, float[] xs, int bs, Accumulator acc, int b0,
                                                 Buffers buffers) {
        long[] shape = s.xShape.clone();
        shape[0] *= bs;
        INDArray x = buffers.array("x", shape);
        long xlen = 1;
        for (long d : s.xShape) xlen *= d;
        write(x, xs, 0, (int) (bs * xlen));
        long cols = (long) bs * s.n * s.positions;
        for (int g = 0; g < s.groups; g++) {
            INDArray patches = ConvForward.patches(x, s.wShape, s.spec, g, buffers.array("patches", s.r, cols));
            INDArray y = buffers.array("y", s.kg, cols);
            mmulInto(prepared.weightGroup(s, g), patches, false, y);
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
        }
    }

    /**
     * Depthwise Conv (one input channel per output channel) as direct loops: candidate i reads its input at
     * {@code x[i·xStride…]} and its weight at {@code w[i·wStride…]} (stride 0 for the fixed side), and each output map is
     * the sum over taps, in tap order, of weight × input in float. Its im2col would copy kh·kw times the input for a
     * [B, kh·kw]·[kh·kw, N·OH·OW] gemm per channel, far more memory traffic than arithmetic.
     */
    private static void depthwiseCandidates(Shapes s, float[] x, int xStride, float[] w, int wStride, int bs, Accumulator acc,
                                            int b0, Buffers buffers) {
        int c = s.channels, h = (int) s.xShape[2], wd = (int) s.xShape[3];
        int kh = (int) s.wShape[2], kw = (int) s.wShape[3], taps = kh * kw;
        int oh = s.outH, ow = s.outW;
        int sh = (int) s.spec.strideH(), sw = (int) s.spec.strideW();
        int dh = (int) s.spec.dilationH(), dw = (int) s.spec.dilationW();
        int pt = (int) s.spec.padTop(), pl = (int) s.spec.padLeft();
        float[] y = buffers.floats("depthwise-map", (long) oh * ow);
        FloatBuffer yb = FloatBuffer.wrap(y);
        // per tap column kx, the ox whose input column ox·sw − pl + kx·dw lies inside [0, wd)
        int[] lo = new int[kw], hi = new int[kw];
        for (int kx = 0; kx < kw; kx++) {
            int off = kx * dw - pl;
            lo[kx] = Math.min(ow, Math.max(0, Math.floorDiv(-off + sw - 1, sw)));
            hi[kx] = Math.max(lo[kx], Math.min(ow, Math.floorDiv(wd - 1 - off, sw) + 1));
        }
        for (int i = 0; i < bs; i++) {
            int xBase = i * xStride, wBase = i * wStride;
            for (int n = 0; n < s.n; n++) {
                for (int ch = 0; ch < c; ch++) {
                    java.util.Arrays.fill(y, 0, oh * ow, 0f);
                    int plane = xBase + (n * c + ch) * h * wd;
                    for (int ky = 0; ky < kh; ky++) {
                        for (int kx = 0; kx < kw; kx++) {
                            float wv = w[wBase + ch * taps + ky * kw + kx];
                            int off = kx * dw - pl;
                            for (int oy = 0; oy < oh; oy++) {
                                int iy = oy * sh - pt + ky * dh;
                                if (iy < 0 || iy >= h) continue;
                                int row = plane + iy * wd + off, out = oy * ow;
                                for (int ox = lo[kx]; ox < hi[kx]; ox++) y[out + ox] += wv * x[row + ox * sw];
                            }
                        }
                    }
                    acc.addRun(b0 + i, n, ch, yb, 0, (n * c + ch) * s.positions);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Gemm / MatMul: rows = N·S (S = positions per sample), Y = X̂ · Ŵ (Ŵ [K, M]) or X̂ · Ŵᵀ (transB, Ŵ [M, K])

    /**
     * cand: bs quantized weights as stored, one after another. With transB they stack as [bs·M, K] (Y = X̂·Ŵᵀ);
     * otherwise their rows interleave into [K, bs·M] (Y = X̂·Ŵ). Either way candidate i owns columns [i·M, (i+1)·M) of Y.
     */
    private static void gemmWeightCandidates(Shapes s, Prepared prepared, float[] cand, int bs, Accumulator acc, int b0,
                                             Buffers buffers) {
        int mk = s.m * s.k;
        INDArray w;
        if (s.transB) {
            w = buffers.array("w", (long) bs * s.m, s.k);
            write(w, cand, 0, bs * mk);
        } else {
            float[] stack = buffers.floats("stack", (long) bs * mk);
            for (int kk = 0; kk < s.k; kk++) {
                for (int i = 0; i < bs; i++) System.arraycopy(cand, i * mk + kk * s.m, stack, (kk * bs + i) * s.m, s.m);
            }
            w = buffers.array("w", s.k, (long) bs * s.m);
            write(w, stack, 0, bs * mk);
        }
        INDArray y = buffers.array("y", s.rows, (long) bs * s.m);
        mmulInto(prepared.matrix(s), w, s.transB, y);
        FloatBuffer yb = y.data().asNioFloat();
        int width = bs * s.m;
        for (int n = 0; n < s.n; n++) {
            for (int q = 0; q < s.positions; q++) {
                int row = n * s.positions + q;
                for (int i = 0; i < bs; i++) acc.addRow(b0 + i, n, yb, row * width + i * s.m, row * s.m);
            }
        }
    }

    /** xs: bs quantized inputs [rows, K], one after another. */
    private static void gemmActivationCandidates(Shapes s, Prepared prepared, float[] xs, int bs, Accumulator acc, int b0,
                                                 Buffers buffers) {
        INDArray x = buffers.array("x", (long) bs * s.rows, s.k);
        write(x, xs, 0, bs * s.rows * s.k);
        INDArray y = buffers.array("y", (long) bs * s.rows, s.m);
        mmulInto(x, prepared.matrix(s), s.transB, y);
        FloatBuffer yb = y.data().asNioFloat();
        for (int i = 0; i < bs; i++) {
            for (int n = 0; n < s.n; n++) {
                for (int q = 0; q < s.positions; q++) {
                    int row = n * s.positions + q;
                    acc.addRow(b0 + i, n, yb, (i * s.rows + row) * s.m, row * s.m);
                }
            }
        }
    }

    /**
     * A MatMul whose weight [K, M] is block-diagonal with blocks of t = K/M rows (output channel c reads only inputs
     * c·t … c·t + t − 1): what {@link OutputPositions} makes of a depthwise convolution's kept positions. Direct loops
     * over each channel's t products instead of the dense gemm, which would do M times the arithmetic. Candidate i
     * reads x at {@code i·xStride} and w at {@code i·wStride} (0 for the fixed side).
     */
    private static void blockDiagonalCandidates(Shapes s, float[] x, int xStride, float[] w, int wStride, int bs,
                                                Accumulator acc, int b0, Buffers buffers) {
        int t = s.blockDiagonal, m = s.m, k = s.k;
        float[] row = buffers.floats("block-diagonal-row", m);
        FloatBuffer rb = FloatBuffer.wrap(row);
        float[] wd = buffers.floats("block-diagonal-weight", k);
        for (int i = 0; i < bs; i++) {
            int xBase = i * xStride, wBase = i * wStride;
            if (i == 0 || wStride != 0) {
                for (int c = 0; c < m; c++) for (int j = 0; j < t; j++) wd[c * t + j] = w[wBase + (c * t + j) * m + c];
            }
            for (int n = 0; n < s.n; n++) {
                for (int q = 0; q < s.positions; q++) {
                    int r = n * s.positions + q, xo = xBase + r * k;
                    for (int c = 0; c < m; c++) {
                        float sum = 0;
                        int at = c * t;
                        for (int j = 0; j < t; j++) sum += x[xo + at + j] * wd[at + j];
                        row[c] = sum;
                    }
                    acc.addRow(b0 + i, n, rb, 0, r * m);
                }
            }
        }
    }

    /** a·b (a·bᵀ with transB) into a new row-major [rows, cols] float array. */
    static INDArray mmul(INDArray a, INDArray b, boolean transB, long rows, long cols) {
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, new long[] {rows, cols}, 'c');
        mmulInto(a, b, transB, y);
        return y;
    }

    /** y = a·b (a·bᵀ with transB); y row-major and of the product's shape. */
    static void mmulInto(INDArray a, INDArray b, boolean transB, INDArray y) {
        Nd4j.exec(new Mmul(a, b, y, 1.0, 0.0, new MMulTranspose(false, transB, false)));
    }

    /** The problem's dimensions in the im2col / row-matrix view. */
    static final class Shapes {
        final boolean conv, transB;
        final long[] xShape, wShape;
        final ConvSpec spec;
        final int n, channels, positions;          // samples, output channels, output positions per sample and channel
        final int groups, kg, r;                   // Conv
        final int outH, outW;                      // Conv output map
        final boolean depthwise;                   // Conv with one input channel per output channel: direct loops
        final int blockDiagonal;                   // MatMul [K, M] weight block-diagonal with K/M rows per block, else 0
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
                outH = (int) o[2];
                outW = (int) o[3];
                depthwise = groups > 1 && kg == 1 && wShape[1] == 1;
                blockDiagonal = 0;
            } else {
                spec = null;
                channels = (int) o[o.length - 1];
                m = channels;
                k = (int) xShape[xShape.length - 1];
                rows = (int) (p.x().length / k);
                positions = rows / n;
                groups = kg = r = 0;
                outH = outW = 0;
                depthwise = false;
                blockDiagonal = transB ? 0 : blockDiagonal(p.w(), k, m);
            }
        }

        /**
         * t when w [k, m] (row-major) is block-diagonal with blocks of t = k/m rows, 1 &lt; t ≤ 64, m &gt; 1: every entry
         * outside rows c·t … c·t + t − 1 of column c is exactly 0 (fake quantization keeps 0 exact); otherwise 0.
         */
        static int blockDiagonal(float[] w, int k, int m) {
            if (m < 2 || k % m != 0 || k / m < 2 || k / m > 64) return 0;
            int t = k / m;
            for (int row = 0; row < k; row++) {
                int own = row / t;
                for (int c = 0; c < m; c++) if (c != own && w[row * m + c] != 0f) return 0;
            }
            return t;
        }

        /** Floats per weight candidate in a sub-block: its gemm output, or its stacked weight when that is larger. */
        long weightSidePerCandidate() {
            long weight = conv ? (long) channels * r : (long) k * m;
            if (depthwise) return weight; // direct loops: no gemm output, one output map at a time
            return Math.max(weight, conv ? (long) kg * n * positions : (long) rows * m);
        }

        /** Floats per activation candidate in a sub-block: its patch matrix or gemm input/output; depthwise, its input. */
        long activationSidePerCandidate() {
            if (depthwise) return xShape[0] * xShape[1] * xShape[2] * xShape[3];
            return conv ? (long) Math.max(r, kg) * n * positions : (long) rows * Math.max(k, m);
        }
    }

    /**
     * Σ ŷ·o, Σ o², Σ ŷ² per (candidate, sample, channel-or-0), then Σ_i cos in sample order.
     *
     * <p>Every candidate of a block is scored on the same outputs in the same order, so Σ o² is summed for the first
     * candidate only and read for all. A run or row of outputs is copied out of the gemm's buffer and activated once,
     * then summed in {@link #LANES} interleaved partial sums added in lane order at the end of the run: one running sum
     * would make every product wait for the addition before it. The order is fixed, so the scores do not depend on
     * the block, the sub-block or the thread.
     */
    static final class Accumulator {
        /** Partial sums per run or row. */
        static final int LANES = 4;
        final int candidates, n, cols;
        final double[] ab, aa, bb;
        final float[] o, bias;
        final Activation act;
        final Shapes s;
        /** One run or row, biased and activated. */
        private final float[] yh;

        Accumulator(int candidates, int n, int cols, LayerProblem p, Shapes s) {
            this.candidates = candidates;
            this.n = n;
            this.cols = cols;
            int size = candidates * n * cols;
            ab = new double[size];
            aa = new double[n * cols];
            bb = new double[size];
            o = p.output();
            bias = p.bias();
            act = p.outputAfterActivation() ? p.op().activation() : Activation.NONE;
            this.s = s;
            yh = new float[Math.max(s.conv ? s.positions : s.m, 1)];
        }

        private float bias(int ch) {
            return bias == null ? 0f : bias.length == 1 ? bias[0] : bias[ch];
        }

        /** A contiguous run of s.positions outputs of channel ch of sample n (Conv layout). */
        void addRun(int cand, int n, int ch, FloatBuffer y, int yFrom, int oFrom) {
            int len = s.positions;
            float[] v = yh;
            y.get(yFrom, v, 0, len);
            float b = bias(ch);
            for (int q = 0; q < len; q++) v[q] += b;
            activate(v, len);
            int at = (cand * this.n + n) * cols + (cols == 1 ? 0 : ch);
            ab[at] += dot(v, 0, o, oFrom, len);
            bb[at] += dot(v, 0, v, 0, len);
            if (cand == 0) aa[n * cols + (cols == 1 ? 0 : ch)] += dot(o, oFrom, o, oFrom, len);
        }

        /** One output row of s.m channels (Gemm layout). */
        void addRow(int cand, int n, FloatBuffer y, int yFrom, int oFrom) {
            int m = s.m;
            float[] v = yh;
            y.get(yFrom, v, 0, m);
            if (bias != null && bias.length == 1) for (int c = 0; c < m; c++) v[c] += bias[0];
            else if (bias != null) for (int c = 0; c < m; c++) v[c] += bias[c];
            activate(v, m);
            int base = (cand * this.n + n) * cols;
            if (cols == 1) {
                ab[base] += dot(v, 0, o, oFrom, m);
                bb[base] += dot(v, 0, v, 0, m);
                if (cand == 0) aa[n] += dot(o, oFrom, o, oFrom, m);
                return;
            }
            double[] xab = ab, xbb = bb, xaa = aa;
            float[] out = o;
            for (int c = 0; c < m; c++) {
                double yv = v[c], ov = out[oFrom + c];
                xab[base + c] += yv * ov;
                xbb[base + c] += yv * yv;
            }
            if (cand == 0) {
                int a0 = n * cols;
                for (int c = 0; c < m; c++) {
                    double ov = out[oFrom + c];
                    xaa[a0 + c] += ov * ov;
                }
            }
        }

        /** Σ v[vFrom + q]·w[wFrom + q], q &lt; len, in double, over LANES partial sums added in lane order. */
        static double dot(float[] v, int vFrom, float[] w, int wFrom, int len) {
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int q = 0;
            for (; q + LANES <= len; q += LANES) {
                s0 += (double) v[vFrom + q] * w[wFrom + q];
                s1 += (double) v[vFrom + q + 1] * w[wFrom + q + 1];
                s2 += (double) v[vFrom + q + 2] * w[wFrom + q + 2];
                s3 += (double) v[vFrom + q + 3] * w[wFrom + q + 3];
            }
            for (; q < len; q++) s0 += (double) v[vFrom + q] * w[wFrom + q];
            return ((s0 + s1) + s2) + s3;
        }

        /**
         * The layer's activation on v[0, len), one loop per kind so that the JIT vectorizes it. ReLU as max(v, 0): the
         * candidate outputs are finite (a quantized input and weight are), so NaN, where max and v &gt; 0 ? v : 0
         * differ, does not arise; −0 becomes +0 either way.
         */
        private void activate(float[] v, int len) {
            switch (act.kind()) {
                case NONE -> { }
                case RELU -> {
                    for (int q = 0; q < len; q++) v[q] = Math.max(v[q], 0f);
                }
                case CLIP -> {
                    float lo = act.min(), hi = act.max();
                    for (int q = 0; q < len; q++) v[q] = Math.min(Math.max(v[q], lo), hi);
                }
            }
        }

        double[][] cosineSums() {
            double[][] out = new double[candidates][cols];
            for (int c = 0; c < candidates; c++) {
                for (int i = 0; i < n; i++) {       // sample order
                    for (int k = 0; k < cols; k++) {
                        int at = (c * n + i) * cols + k;
                        out[c][k] += cosine(ab[at], aa[i * cols + k], bb[at]);
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
