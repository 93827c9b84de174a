package io.quantcal.kernels.easyquant;

import static io.quantcal.kernels.easyquant.EasyCandidateEvaluationTest.minmaxActivation;
import static io.quantcal.kernels.easyquant.EasyCandidateEvaluationTest.weightPerChannel;
import static io.quantcal.kernels.easyquant.EasyCandidateEvaluationTest.weightPerTensor;
import static io.quantcal.kernels.easyquant.EasyFixtures.gaussian;
import static io.quantcal.kernels.easyquant.EasyFixtures.withoutActivation;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Spatial subsampling: the Conv problem rewritten over im2col patches scores every candidate as the Conv does
 * (plain, strided and padded, grouped, depthwise; weight and activation side), a subsample scores as the direct
 * quantized conv restricted to the kept positions, and a sample keeps its positions whatever its chunk.
 */
class EasyOutputPositionsTest {

    static final double TOL = 2e-5;

    record Case(String name, LayerProblem p, INDArray x, INDArray w, INDArray b) {}

    static Case conv(String name, long c, long k, int group, ConvSpec spec, boolean perChannel, boolean relu) {
        INDArray x = gaussian(31, 3, c, 9, 8), w = gaussian(32, k, c / group, 3, 3), b = gaussian(33, k);
        LayerOp op = new LayerOp.Conv(spec, relu ? Activation.RELU : Activation.NONE);
        QuantParams wq = perChannel ? weightPerChannel(w, 0, 6) : weightPerTensor(w, 6);
        return new Case(name, EasyFixtures.problem(op, x, w, b, relu, minmaxActivation(x, 6), wq, 10), x, w, b);
    }

    static List<Case> cases() {
        ConvSpec padded = new ConvSpec(new long[] {2, 1}, new long[] {1, 0, 1, 2}, new long[] {1, 1}, 1);
        return List.of(
                conv("plain per-channel", 4, 6, 1, new ConvSpec(new long[] {1, 1}, new long[] {0, 0, 0, 0}, new long[] {1, 1}, 1), true, false),
                conv("strided, asymmetric pads, relu", 4, 5, 1, padded, false, true),
                conv("grouped", 4, 6, 2, new ConvSpec(new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {1, 1}, 2), true, false),
                conv("depthwise", 6, 6, 6, new ConvSpec(new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {1, 1}, 6), true, true));
    }

    static CandidateBlock weightBlock(LayerProblem p) {
        double[] w0 = p.weight().scale();
        double[][] cands = new double[3][w0.length];
        double[] f = {0.7, 1.0, 1.3};
        for (int i = 0; i < f.length; i++) for (int c = 0; c < w0.length; c++) cands[i][c] = w0[c] * f[i];
        return new CandidateBlock(SearchSide.WEIGHT, new double[] {p.activation().scale()[0] * 0.9}, cands);
    }

    static CandidateBlock activationBlock(LayerProblem p) {
        double a0 = p.activation().scale()[0];
        return CandidateBlock.perTensor(SearchSide.ACTIVATION, p.weight().scale(), a0 * 0.6, a0, a0 * 1.2);
    }

    @Test
    void allPositionsAsPatchesScoreAsTheConv() {
        for (Case c : cases()) {
            LayerProblem p = c.p();
            int hw = (int) (p.outputShape()[2] * p.outputShape()[3]);
            int[][] all = new int[p.samples()][hw];
            for (int[] a : all) for (int i = 0; i < hw; i++) a[i] = i;
            LayerProblem q = OutputPositions.asPatches(p, all);
            assertTrue(q.op() instanceof LayerOp.MatMul, c.name());
            for (CandidateBlock block : List.of(weightBlock(p), activationBlock(p))) {
                CandidateScores a = CandidateEvaluation.evaluate(p, block), b = CandidateEvaluation.evaluate(q, block);
                assertArrayEquals(a.sampleIds(), b.sampleIds());
                for (int k = 0; k < block.size(); k++) {
                    assertArrayEquals(a.cosineSums()[k], b.cosineSums()[k], TOL, c.name() + " " + block.side() + " candidate " + k);
                }
            }
        }
    }

    @Test
    void subsampleScoresAsTheDirectConvOnTheKeptPositions() {
        for (Case c : cases()) {
            LayerProblem p = c.p();
            long[] os = p.outputShape();
            int hw = (int) (os[2] * os[3]), k = (int) os[1], per = 7;
            LayerProblem q = OutputPositions.subsample(p, per, 5);
            assertArrayEquals(new long[] {p.samples(), per, k}, q.outputShape(), c.name());
            CandidateBlock block = activationBlock(p);
            CandidateScores s = CandidateEvaluation.evaluate(q, block);
            for (int cand = 0; cand < block.size(); cand++) {
                QuantParams aq = p.activation().withScales(block.candidate(cand));
                QuantParams wq = p.weight().withScales(block.fixedScales());
                LayerOp op = p.outputAfterActivation() ? p.op() : withoutActivation(p.op());
                float[] oh = LayerForward.forward(op, c.x(), c.w(), c.b(), aq, wq).dup('c').data().asFloat();
                float[] o = p.output();
                double sum = 0;
                for (int smp = 0; smp < p.samples(); smp++) {
                    int[] keep = OutputPositions.choose(hw, per, 5, p.sampleIds()[smp]);
                    double dot = 0, n1 = 0, n2 = 0;
                    for (int ch = 0; ch < k; ch++) {
                        for (int pos : keep) {
                            int at = (smp * k + ch) * hw + pos;
                            dot += (double) o[at] * oh[at];
                            n1 += (double) o[at] * o[at];
                            n2 += (double) oh[at] * oh[at];
                        }
                    }
                    sum += dot / Math.sqrt(n1 * n2);
                }
                assertEquals(sum, s.sum(cand, 0), TOL, c.name() + " candidate " + cand);
            }
        }
    }

    @Test
    void aSampleKeepsItsPositionsWhateverItsChunk() {
        LayerProblem p = cases().get(1).p();
        LayerProblem whole = OutputPositions.subsample(p, 5, 9);
        LayerProblem first = OutputPositions.subsample(EasyFixtures.chunk(p, 0, 1), 5, 9);
        LayerProblem rest = OutputPositions.subsample(EasyFixtures.chunk(p, 1, 3), 5, 9);
        int xin = whole.x().length / 3;
        assertArrayEquals(Arrays.copyOfRange(whole.x(), 0, xin), first.x());
        assertArrayEquals(Arrays.copyOfRange(whole.x(), xin, 3 * xin), rest.x());
        // distinct samples draw distinct positions; another seed draws others; enough positions = unchanged
        assertNotEquals(Arrays.toString(OutputPositions.choose(72, 5, 9, 10)), Arrays.toString(OutputPositions.choose(72, 5, 9, 11)));
        assertNotEquals(Arrays.toString(OutputPositions.choose(72, 5, 9, 10)), Arrays.toString(OutputPositions.choose(72, 5, 8, 10)));
        int[] pos = OutputPositions.choose(72, 72, 9, 10);
        for (int i = 0; i < pos.length; i++) assertEquals(i, pos[i]);
        int hw = (int) (p.outputShape()[2] * p.outputShape()[3]);
        assertSame(p, OutputPositions.subsample(p, hw, 9));
        assertEquals(LayerOp.Conv.class, OutputPositions.subsample(p, hw, 9).op().getClass());
    }
}
