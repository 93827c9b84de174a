package io.quantcal.kernels.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The output cosine evaluate prints: the mean of the samples' cosines for vector outputs; for one value per sample (a
 * voice detector's speech probability, [N, 1]), whose per-sample cosine is only its sign (it read 1.00000 against an
 * output SQNR of 4.6 dB), the cosine of the two outputs over all samples. Both worked by hand.
 */
class ModelComparisonOutputCosineTest {

    /** y = x · w, x [N, 3], w [3, m]. */
    static OnnxModel linear(float[] w, int m) {
        return OnnxModel.parse("lin.onnx", Graphs.model(13,
                List.of(Graphs.node("MatMul", "mm", List.of("x", "w"), List.of("y"))),
                List.of(Graphs.floatTensor("w", w, 3, m)),
                List.of(Graphs.floatValue("x", -1, 3)), List.of(Graphs.floatValue("y", -1, m))).toByteArray(), null);
    }

    static ModelComparison.Sums compare(OnnxModel a, OnnxModel b, float[][] xs) {
        List<ModelComparison.Labelled> samples = new ArrayList<>();
        for (float[] x : xs) samples.add(new ModelComparison.Labelled(x, -1));
        try (ModelRunner fp = ModelRunner.open(a, RunnerOptions.singleThreaded());
             ModelRunner q = ModelRunner.open(b, RunnerOptions.singleThreaded())) {
            return ModelComparison.compare(fp, q, ModelInputs.singleFloat("x", new long[] {3}), "y", samples.iterator(), 2,
                    List.of());
        }
    }

    static final float[][] XS = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}};

    @Test
    void oneValuePerSampleGetsTheCosineOverAllSamples() {
        // a = x · (1, 2, 3) = (1, 2, 3, 3); b = x · (1, 2, -1) = (1, 2, -1, 3): every per-sample "cosine" but the
        // third is 1, their mean 0.5; over all samples Σab = 1 + 4 − 3 + 9 = 11, Σa² = 23, Σb² = 15
        ModelComparison.Sums s = compare(linear(new float[] {1, 2, 3}, 1), linear(new float[] {1, 2, -1}, 1), XS);
        assertEquals(4, s.outputValues());
        assertEquals(11 / Math.sqrt(23 * 15), s.meanCosine(), 1e-12);
        assertEquals(10 * Math.log10(23.0 / 16), s.sqnrDb(), 1e-9);
    }

    @Test
    void vectorOutputsKeepTheMeanOfTheSamplesCosines() {
        // w [3, 2]: a_i = (row i of wa), b_i = (row i of wb) for the unit samples, and the sum of rows 0, 1 for the last
        float[] wa = {1, 0, 0, 1, 1, 1};
        float[] wb = {1, 0, 1, 1, -1, 1};
        ModelComparison.Sums s = compare(linear(wa, 2), linear(wb, 2), XS);
        // sample cosines: (1,0)·(1,0) = 1; (0,1)·(1,1) = 1/√2; (1,1)·(−1,1) = 0; (1,1)·(2,1) = 3/√10
        double expected = (1 + 1 / Math.sqrt(2) + 0 + 3 / Math.sqrt(10)) / 4;
        assertEquals(8, s.outputValues());
        assertEquals(expected, s.meanCosine(), 1e-7);
    }
}
