package io.quantcal.kernels.easyquant;

import static io.quantcal.kernels.easyquant.EasyFixtures.gaussian;
import static io.quantcal.kernels.easyquant.EasyFixtures.withoutActivation;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.layer.Metrics;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * CandidateEvaluation's cosine sums against the direct computation: LayerForward.forward on fake-quantized
 * tensors (ND4J conv / gemm, not im2col) and Metrics' per-sample or per-channel cosine.
 */
class EasyCandidateEvaluationTest {

    static final double TOL = 2e-5;
    /**
     * The same scores computed with other gemm shapes (more or fewer candidates stacked, fewer samples in a chunk):
     * equal but for float32 rounding. On CPUs with AVX-512 they came out bit for bit; BLAS kernels for AVX2 sum an
     * edge tile in another order and differ in the ninth digit (seen: 2.8e-9). A fixed side prepared wrongly moves the
     * scores by 1e-4 and more.
     */
    static final double SAME = 1e-7;

    static QuantParams minmaxActivation(INDArray x, int bits) {
        return AffineQuantizer.fromRange(QuantGrid.of(bits, false), x.minNumber().doubleValue(), x.maxNumber().doubleValue());
    }

    static QuantParams weightPerTensor(INDArray w, int bits) {
        return SymmetricQuantizer.fromClip(bits, true, Transforms.abs(w, true).maxNumber().doubleValue());
    }

    static QuantParams weightPerChannel(INDArray w, int axis, int bits) {
        int[] others = new int[w.rank() - 1];
        for (int d = 0, i = 0; d < w.rank(); d++) if (d != axis) others[i++] = d;
        return SymmetricQuantizer.fromClips(bits, true, axis, Transforms.abs(w, true).max(others).toDoubleVector());
    }

    /** Direct: Σ_i cos(O_i, Ô_i) of the whole output, or per channel of each sample (channel axis = chAxis). */
    static double[] direct(LayerProblem p, INDArray x, INDArray w, INDArray b, QuantParams xq, QuantParams wq, boolean perChannel) {
        LayerOp op = p.outputAfterActivation() ? p.op() : withoutActivation(p.op());
        INDArray o = org.nd4j.linalg.factory.Nd4j.create(p.output(), p.outputShape(), 'c');
        INDArray oh = LayerForward.forward(op, x, w, b, xq, wq).dup('c');
        if (!perChannel) {
            double s = 0;
            for (double c : Metrics.cosinePerSample(o, oh)) s += c;
            return new double[] {s};
        }
        double[] sums = new double[p.outputChannels()];
        for (int i = 0; i < o.size(0); i++) {
            INDArrayIndex[] idx = new INDArrayIndex[o.rank()];
            idx[0] = NDArrayIndex.interval(i, i + 1);
            for (int d = 1; d < idx.length; d++) idx[d] = NDArrayIndex.all();
            double[] c = Metrics.cosinePerChannel(o.get(idx).dup('c'), oh.get(idx).dup('c'));
            for (int k = 0; k < c.length; k++) sums[k] += c[k];
        }
        return sums;
    }

    /** Weight side: each candidate scaled from the template; checks batched (in sub-blocks of `sub`) vs direct. */
    static void checkWeightSide(LayerProblem p, INDArray x, INDArray w, INDArray b, double[] factors, long maxGemmOutput) {
        double[] w0 = p.weight().scale();
        double[][] cands = new double[factors.length][w0.length];
        for (int i = 0; i < factors.length; i++) for (int c = 0; c < w0.length; c++) cands[i][c] = w0[c] * factors[i];
        double[] aScale = {p.activation().scale()[0] * 0.8};
        CandidateScores s = CandidateEvaluation.evaluate(p, List.of(new CandidateBlock(SearchSide.WEIGHT, aScale, cands)),
                maxGemmOutput).get(0);
        assertArrayEquals(p.sampleIds(), s.sampleIds());
        assertEquals(factors.length, s.candidates());
        for (int i = 0; i < factors.length; i++) {
            double[] ref = direct(p, x, w, b, p.activation().withScales(aScale), p.weight().withScales(cands[i]), p.weight().perChannel());
            assertArrayEquals(ref, s.cosineSums()[i], TOL, "candidate " + i);
        }
        // a step's blocks in one call: the fixed side (and a Conv's patches) prepared once, the same scores bit for bit
        int half = factors.length / 2;
        List<CandidateScores> two = CandidateEvaluation.evaluate(p, List.of(
                new CandidateBlock(SearchSide.WEIGHT, aScale, java.util.Arrays.copyOfRange(cands, 0, half)),
                new CandidateBlock(SearchSide.WEIGHT, aScale, java.util.Arrays.copyOfRange(cands, half, factors.length))),
                maxGemmOutput);
        for (int i = 0; i < factors.length; i++) {
            double[] got = i < half ? two.get(0).cosineSums()[i] : two.get(1).cosineSums()[i - half];
            assertArrayEquals(s.cosineSums()[i], got, SAME, "candidate " + i + " in a two-block step");
        }
    }

    static void checkActivationSide(LayerProblem p, INDArray x, INDArray w, INDArray b, double[] factors, long maxGemmOutput) {
        double a0 = p.activation().scale()[0];
        double[] wScales = p.weight().scale();
        for (int c = 0; c < wScales.length; c++) wScales[c] *= 0.9;
        double[] aCands = new double[factors.length];
        for (int i = 0; i < factors.length; i++) aCands[i] = a0 * factors[i];
        CandidateScores s = CandidateEvaluation.evaluate(p, List.of(CandidateBlock.perTensor(SearchSide.ACTIVATION, wScales, aCands)),
                maxGemmOutput).get(0);
        for (int i = 0; i < factors.length; i++) {
            double[] ref = direct(p, x, w, b, p.activation().withScales(new double[] {aCands[i]}), p.weight().withScales(wScales), false);
            assertEquals(1, s.cosineSums()[i].length);
            assertEquals(ref[0], s.cosineSums()[i][0], TOL, "candidate " + i);
        }
    }

    static final double[] FACTORS = {0.5, 0.73, 1.0, 1.41, 2.0};

    @Test
    void denseConvWithReluPerTensorWeights() {
        INDArray x = gaussian(1, 3, 4, 7, 7), w = gaussian(2, 5, 4, 3, 3), b = gaussian(3, 5);
        LayerOp op = new LayerOp.Conv(ConvSpec.of(1, 1, 1, 1), Activation.RELU);
        LayerProblem p = EasyFixtures.problem(op, x, w, b, true, minmaxActivation(x, 8), weightPerTensor(w, 8), 10);
        checkWeightSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(p, x, w, b, FACTORS, 1);      // one candidate per gemm
        checkWeightSide(p, x, w, b, FACTORS, 2 * 5 * 3 * 49); // sub-blocks of 2, 2, 1
        checkActivationSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(p, x, w, b, FACTORS, 1);
    }

    @Test
    void denseConvPerChannelWeightsScoresEachChannel() {
        INDArray x = gaussian(4, 2, 3, 6, 5), w = gaussian(5, 4, 3, 3, 2), b = gaussian(6, 4);
        LayerOp op = new LayerOp.Conv(new ConvSpec(new long[] {2, 1}, new long[] {1, 0, 0, 1}, new long[] {1, 1}, 1), Activation.RELU);
        LayerProblem p = EasyFixtures.problem(op, x, w, b, false, minmaxActivation(x, 7), weightPerChannel(w, 0, 7), 0);
        checkWeightSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
    }

    @Test
    void groupedAndDepthwiseConv() {
        INDArray x = gaussian(7, 3, 6, 8, 8), w = gaussian(8, 4, 3, 3, 3), b = gaussian(9, 4);
        LayerOp op = new LayerOp.Conv(new ConvSpec(new long[] {2, 2}, new long[] {1, 1, 0, 0}, new long[] {1, 1}, 2), Activation.clip(0, 2));
        LayerProblem p = EasyFixtures.problem(op, x, w, b, true, minmaxActivation(x, 8), weightPerChannel(w, 0, 8), 5);
        checkWeightSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(p, x, w, b, FACTORS, 2 * 4 * 3 * 9); // per-group stacks of 2, 2, 1, patches remade per sub-block
        checkActivationSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(p, x, w, b, FACTORS, 3 * 3 * 9 * 16);

        INDArray wd = gaussian(10, 6, 1, 3, 3);
        LayerOp dw = new LayerOp.Conv(ConvSpec.of(1, 1, 1, 6), Activation.NONE);
        LayerProblem pd = EasyFixtures.problem(dw, x, wd, null, true, minmaxActivation(x, 8), weightPerTensor(wd, 8), 0);
        checkWeightSide(pd, x, wd, null, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(pd, x, wd, null, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
    }

    /**
     * Depthwise convolutions run as direct loops, not im2col: strides, asymmetric pads, dilation, per-channel weights, a
     * fused ReLU and sub-blocks all against the direct reference (ND4J's conv2d through LayerForward).
     */
    @Test
    void depthwiseConvAsDirectLoops() {
        INDArray x = gaussian(21, 3, 5, 9, 8), b = gaussian(22, 5);
        INDArray w3 = gaussian(23, 5, 1, 3, 3), w5 = gaussian(24, 5, 1, 5, 5);
        LayerOp strided = new LayerOp.Conv(new ConvSpec(new long[] {2, 2}, new long[] {1, 0, 0, 1}, new long[] {1, 1}, 5), Activation.RELU);
        LayerProblem ps = EasyFixtures.problem(strided, x, w3, b, true, minmaxActivation(x, 8), weightPerChannel(w3, 0, 8), 3);
        checkWeightSide(ps, x, w3, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(ps, x, w3, b, FACTORS, 2 * 5 * 9);                 // weight sub-blocks of 2, 2, 1
        checkActivationSide(ps, x, w3, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(ps, x, w3, b, FACTORS, 2 * 3 * 5 * 9 * 8);     // input sub-blocks of 2, 2, 1
        LayerOp dilated = new LayerOp.Conv(new ConvSpec(new long[] {1, 2}, new long[] {2, 2, 2, 1}, new long[] {2, 1}, 5), Activation.NONE);
        LayerProblem pd = EasyFixtures.problem(dilated, x, w5, null, false, minmaxActivation(x, 6), weightPerTensor(w5, 6), 0);
        checkWeightSide(pd, x, w5, null, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(pd, x, w5, null, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
    }

    @Test
    void gemmTransBAndNot() {
        INDArray x = gaussian(11, 6, 10), wt = gaussian(12, 7, 10), w = gaussian(13, 10, 7), b = gaussian(14, 7);
        LayerOp opT = new LayerOp.Gemm(true, Activation.RELU);
        LayerProblem pt = EasyFixtures.problem(opT, x, wt, b, true, minmaxActivation(x, 8), weightPerChannel(wt, 0, 8), 100);
        checkWeightSide(pt, x, wt, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(pt, x, wt, b, FACTORS, 2 * 6 * 7);
        checkActivationSide(pt, x, wt, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);

        LayerOp op = new LayerOp.Gemm(false, Activation.NONE);
        LayerProblem p = EasyFixtures.problem(op, x, w, b, true, minmaxActivation(x, 8), weightPerTensor(w, 8), 0);
        checkWeightSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(p, x, w, b, FACTORS, 2 * 10 * 7); // [K, B·M] stacks of 2, 2, 1 in reused buffers
        checkActivationSide(p, x, w, b, FACTORS, 2 * 6 * 10);
        LayerProblem pc = EasyFixtures.problem(op, x, w, null, true, minmaxActivation(x, 8), weightPerChannel(w, 1, 8), 0);
        checkWeightSide(pc, x, w, null, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(pc, x, w, null, FACTORS, 3 * 10 * 7);
    }

    /**
     * A MatMul whose weight is block-diagonal (what the positions subsampling makes of a depthwise conv) runs as direct
     * per-channel loops; the scores are the dense product's (ND4J matmul reference). One off-block value makes it dense.
     */
    @Test
    void blockDiagonalMatMulAsDirectLoops() {
        int c = 6, t = 9;
        INDArray x = gaussian(31, 4, 5, c * t), b = gaussian(32, c);
        float[] wv = gaussian(33, c * t, c).data().asFloat();
        for (int row = 0; row < c * t; row++) for (int col = 0; col < c; col++) if (col != row / t) wv[row * c + col] = 0f;
        INDArray w = org.nd4j.linalg.factory.Nd4j.create(wv, new long[] {c * t, c}, 'c');
        assertEquals(t, CandidateEvaluation.Shapes.blockDiagonal(wv, c * t, c));
        LayerOp op = new LayerOp.MatMul(Activation.RELU);
        // per-channel weights on rank-2 rows (the reference scores channels on axis 1); per tensor on [N, P, K]
        INDArray x2 = x.reshape(20, c * t);
        LayerProblem pc = EasyFixtures.problem(op, x2, w, b, true, minmaxActivation(x2, 8), weightPerChannel(w, 1, 8), 0);
        checkWeightSide(pc, x2, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkWeightSide(pc, x2, w, b, FACTORS, 2 * 20 * c * t);               // sub-blocks of 2, 2, 1
        checkActivationSide(pc, x2, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(pc, x2, w, b, FACTORS, 2 * 20 * c * t);
        LayerProblem pt = EasyFixtures.problem(op, x, w, b, true, minmaxActivation(x, 8), weightPerTensor(w, 8), 0);
        checkWeightSide(pt, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(pt, x, w, b, FACTORS, 2 * 20 * c * t);
        wv[3 * c + 4] = 0.5f;
        assertEquals(0, CandidateEvaluation.Shapes.blockDiagonal(wv, c * t, c));
        assertEquals(0, CandidateEvaluation.Shapes.blockDiagonal(new float[c * c], c, c)); // t = 1: a plain gemm
    }

    @Test
    void matMulOverRank3Input() {
        INDArray x = gaussian(15, 4, 3, 8), w = gaussian(16, 8, 5), b = gaussian(17, 5);
        LayerOp op = new LayerOp.MatMul(Activation.NONE);
        LayerProblem p = EasyFixtures.problem(op, x, w, b, true, minmaxActivation(x, 8), weightPerTensor(w, 8), 0);
        checkWeightSide(p, x, w, b, FACTORS, CandidateEvaluation.MAX_GEMM_OUTPUT);
        checkActivationSide(p, x, w, b, FACTORS, 2 * 12 * 8);
    }

    @Test
    void chunksMergeInSampleOrderAndMismatchesAreNamed() {
        INDArray x = gaussian(18, 9, 10), w = gaussian(19, 10, 4);
        LayerProblem p = EasyFixtures.problem(new LayerOp.Gemm(false, Activation.NONE), x, w, null, true,
                minmaxActivation(x, 6), weightPerTensor(w, 6), 0);
        CandidateBlock block = CandidateBlock.perTensor(SearchSide.WEIGHT, p.activation().scale(), 0.01, 0.02, 0.05);
        CandidateScores whole = CandidateEvaluation.evaluate(p, block);
        CandidateScores merged = CandidateScores.merge(List.of(
                CandidateEvaluation.evaluate(EasyFixtures.chunk(p, 6, 9), block),
                CandidateEvaluation.evaluate(EasyFixtures.chunk(p, 0, 2), block),
                CandidateEvaluation.evaluate(EasyFixtures.chunk(p, 2, 6), block)));
        assertArrayEquals(whole.sampleIds(), merged.sampleIds());
        for (int i = 0; i < 3; i++) assertArrayEquals(whole.cosineSums()[i], merged.cosineSums()[i], SAME);
        assertThrows(IllegalArgumentException.class, () -> CandidateScores.merge(List.of(
                CandidateEvaluation.evaluate(EasyFixtures.chunk(p, 0, 3), block),
                CandidateEvaluation.evaluate(EasyFixtures.chunk(p, 2, 6), block))));
        assertThrows(IllegalArgumentException.class, () -> CandidateEvaluation.evaluate(p,
                new CandidateBlock(SearchSide.WEIGHT, p.activation().scale(), new double[][] {{0.1, 0.2}})));
    }
}
