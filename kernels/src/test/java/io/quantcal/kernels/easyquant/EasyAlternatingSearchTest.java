package io.quantcal.kernels.easyquant;

import static io.quantcal.kernels.easyquant.EasyCandidateEvaluationTest.weightPerChannel;
import static io.quantcal.kernels.easyquant.EasyCandidateEvaluationTest.weightPerTensor;
import static io.quantcal.kernels.easyquant.EasyFixtures.gaussian;
import static io.quantcal.kernels.easyquant.EasyFixtures.heavyTailed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.layer.Metrics;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

class EasyAlternatingSearchTest {

    /** Symmetric minmax on the input: clip = max |x|, the paper's initial scale. */
    static QuantParams minmaxSymmetric(INDArray x, int bits) {
        return SymmetricQuantizer.fromClip(bits, true, Transforms.abs(x, true).maxNumber().doubleValue());
    }

    static LayerProblem heavyTailedGemm(int bits, boolean perChannel) {
        INDArray x = heavyTailed(21, 48, 64), w = gaussian(22, 32, 64), b = gaussian(23, 32);
        QuantParams wq = perChannel ? weightPerChannel(w, 0, bits) : weightPerTensor(w, bits);
        return EasyFixtures.problem(new LayerOp.Gemm(true, Activation.NONE), x, w, b, true, minmaxSymmetric(x, bits), wq, 0);
    }

    static double directMeanCosine(LayerProblem p, QuantParams wq, QuantParams aq) {
        INDArray x = Nd4j.create(p.x(), p.xShape(), 'c'), w = Nd4j.create(p.w(), p.wShape(), 'c');
        INDArray b = p.bias() == null ? null : Nd4j.create(p.bias(), new long[] {p.bias().length}, 'c');
        INDArray o = Nd4j.create(p.output(), p.outputShape(), 'c');
        double s = 0;
        for (double c : Metrics.cosinePerSample(o, LayerForward.forward(p.op(), x, w, b, aq, wq))) s += c;
        return s / p.samples();
    }

    static void assertMonotone(AlternatingSearch.Result r) {
        double prev = r.initialCosine();
        for (AlternatingSearch.Round round : r.history()) {
            assertTrue(round.cosineAfterWeight() >= prev, round + " after " + prev);
            assertTrue(round.cosineAfterActivation() >= round.cosineAfterWeight(), round.toString());
            prev = round.cosineAfterActivation();
        }
        assertEquals(prev, r.finalCosine(), 0.0);
        assertTrue(r.finalCosine() >= r.initialCosine());
    }

    @Test
    void clippingHeavyTailedInputsBeatsMinmax() {
        LayerProblem p = heavyTailedGemm(6, false);
        AlternatingSearch.Result r = AlternatingSearch.runLocal(List.of(p), AlternatingSearch.Options.defaults());
        System.out.println("W6A6 heavy-tailed Gemm: " + r.initialCosine() + " -> " + r.finalCosine() + " " + r.history());
        assertMonotone(r);
        assertTrue(r.finalCosine() > r.initialCosine() + 1e-3, r.initialCosine() + " -> " + r.finalCosine());
        // the activation range was clipped below max |x|
        assertTrue(r.activation().scale()[0] < p.activation().scale()[0]);
        // the reported numbers are what the layer gives with those parameters, computed independently
        assertEquals(directMeanCosine(p, p.weight(), p.activation()), r.initialCosine(), 1e-6);
        assertEquals(directMeanCosine(p, r.weight(), r.activation()), r.finalCosine(), 1e-6);
        assertEquals(48, r.samples());
    }

    @Test
    void int7PerChannelSearchIsMonotoneAndImproves() {
        LayerProblem p = heavyTailedGemm(7, true);
        AlternatingSearch.Result r = AlternatingSearch.runLocal(List.of(p), AlternatingSearch.Options.defaults());
        System.out.println("W7A7 per-channel: " + r.initialCosine() + " -> " + r.finalCosine() + " " + r.history());
        assertMonotone(r);
        assertTrue(r.finalCosine() > r.initialCosine());
        assertEquals(7, r.weight().grid().bits());
        assertEquals(-63, r.weight().qmin());
        assertEquals(32, r.weight().channels());
        assertEquals(directMeanCosine(p, r.weight(), r.activation()), r.finalCosine(), 1e-6);
    }

    @Test
    void oneAndThreeChunksChooseTheSameScales() {
        LayerProblem p = heavyTailedGemm(6, true);
        AlternatingSearch.Options o = AlternatingSearch.Options.defaults().withBlockSize(25);
        AlternatingSearch.Result one = AlternatingSearch.runLocal(List.of(p), o);
        AlternatingSearch.Result three = AlternatingSearch.runLocal(List.of(
                EasyFixtures.chunk(p, 30, 48), EasyFixtures.chunk(p, 0, 13), EasyFixtures.chunk(p, 13, 30)), o);
        assertArrayEquals(one.weight().scale(), three.weight().scale(), 0.0);
        assertArrayEquals(one.activation().scale(), three.activation().scale(), 0.0);
        assertEquals(one.history().size(), three.history().size());
        assertEquals(one.finalCosine(), three.finalCosine(), 1e-12);
    }

    @Test
    void convPerChannelWithReluIsMonotoneAndStopsOnSmallGain() {
        INDArray x = Transforms.relu(heavyTailed(31, 6, 8, 10, 10), true), w = gaussian(32, 12, 4, 3, 3), b = gaussian(33, 12);
        LayerOp op = new LayerOp.Conv(ConvSpec.of(1, 1, 1, 2), Activation.RELU);
        QuantParams a = SymmetricQuantizer.fromClip(7, false, x.maxNumber().doubleValue()); // uint7 after ReLU
        LayerProblem p = EasyFixtures.problem(op, x, w, b, true, a, weightPerChannel(w, 0, 7), 0);
        AlternatingSearch.Result r = AlternatingSearch.runLocal(List.of(p), AlternatingSearch.Options.defaults().withRounds(5));
        System.out.println("W7A7 grouped conv: " + r.initialCosine() + " -> " + r.finalCosine() + " " + r.history());
        assertMonotone(r);
        assertTrue(r.finalCosine() > r.initialCosine());
        assertTrue(r.history().size() <= 5);
        assertEquals(directMeanCosine(p, r.weight(), r.activation()), r.finalCosine(), 1e-5);
    }

    @Test
    void aStepThatCannotImproveKeepsTheCurrentScale() {
        // a grid of one point far from the optimum: every candidate is worse, nothing moves
        LayerProblem p = heavyTailedGemm(8, false);
        AlternatingSearch.Result r = AlternatingSearch.runLocal(List.of(p),
                AlternatingSearch.Options.defaults().withGrid(40, 40, 1));
        assertEquals(p.weight(), r.weight());
        assertEquals(p.activation(), r.activation());
        assertEquals(r.initialCosine(), r.finalCosine(), 0.0);
        assertEquals(1, r.history().size());
    }

    /**
     * The job's way: the steppers of several layers advanced together, every pending block of every layer
     * scored in one batch (blocks in reverse order, chunks shuffled, as Spark may return them) gives each
     * layer exactly the result of its own search.
     */
    @Test
    void layersSteppedTogetherGiveEachLayersOwnSearch() {
        LayerProblem perTensor = heavyTailedGemm(6, false), perChannel = heavyTailedGemm(7, true);
        AlternatingSearch.Options o = AlternatingSearch.Options.defaults().withBlockSize(17);
        List<List<LayerProblem>> chunks = List.of(
                List.of(EasyFixtures.chunk(perTensor, 30, 48), EasyFixtures.chunk(perTensor, 0, 30)),
                List.of(EasyFixtures.chunk(perChannel, 20, 48), EasyFixtures.chunk(perChannel, 0, 20)));
        List<AlternatingSearch.Stepper> steppers = List.of(
                new AlternatingSearch.Stepper(perTensor.weight(), perTensor.activation(), o),
                new AlternatingSearch.Stepper(perChannel.weight(), perChannel.activation(), o));
        int steps = 0;
        while (steppers.stream().anyMatch(s -> !s.done())) {
            steps++;
            for (int l = 0; l < steppers.size(); l++) {
                AlternatingSearch.Stepper s = steppers.get(l);
                if (s.done()) continue;
                List<CandidateBlock> blocks = s.pending();
                CandidateScores[] scores = new CandidateScores[blocks.size()];
                for (int b = blocks.size() - 1; b >= 0; b--) {
                    List<CandidateScores> parts = new java.util.ArrayList<>();
                    for (LayerProblem c : chunks.get(l)) parts.add(CandidateEvaluation.evaluate(c, blocks.get(b)));
                    scores[b] = CandidateScores.merge(parts);
                }
                s.accept(List.of(scores));
            }
        }
        assertTrue(steps >= 3, "initial, weight and activation steps at least");
        for (int l = 0; l < 2; l++) {
            LayerProblem p = l == 0 ? perTensor : perChannel;
            AlternatingSearch.Result alone = AlternatingSearch.runLocal(List.of(p), o);
            AlternatingSearch.Result together = steppers.get(l).result();
            assertArrayEquals(alone.weight().scale(), together.weight().scale());
            assertArrayEquals(alone.activation().scale(), together.activation().scale());
            assertEquals(alone.finalCosine(), together.finalCosine(), 1e-12);
            assertEquals(alone.history().size(), together.history().size());
            assertMonotone(together);
        }
    }
}
