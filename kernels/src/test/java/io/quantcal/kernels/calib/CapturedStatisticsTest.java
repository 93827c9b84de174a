package io.quantcal.kernels.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.kernels.stats.MinMaxStats;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Min/max and histograms read where ONNX Runtime wrote the captured tensors equal the JVM's scan of the same tensors
 * returned as arrays, at any batching and opset.
 */
class CapturedStatisticsTest {

    private static final List<String> TENSORS = List.of("x", "c", "r", "f");

    /** x [N,2,6,6] -> Conv c [N,4,6,6] -> Relu r -> Flatten f [N,144] -> Gemm logits [N,5]. */
    private static OnnxModel model(long opset) {
        TestModels.Builder b = new TestModels.Builder(11);
        b.conv("conv", "x", "c", 2, 4, 3, 1, 1, 1, true);
        b.relu("relu", "c", "r");
        b.node(Graphs.node("Flatten", "flatten", List.of("r"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc", "f", "logits", 144, 5, false, true);
        return b.build(opset, List.of(Graphs.floatValue("x", -1, 2, 6, 6)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    private static List<float[]> samples(int n, long seed) {
        Random r = new Random(seed);
        List<float[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(TestModels.gaussian(r, 72, 1.0 + i % 3));
        return out;
    }

    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {10, 13, 18, 21})
    void minMaxReadInPlaceEqualTheScanOfTheCapturedTensors(long opset) {
        OnnxModel m = model(opset);
        ModelInputs in = ModelInputs.singleFloat("x", new long[] {2, 6, 6});
        try (ModelRunner full = ModelRunner.open(m, TENSORS, RunnerOptions.singleThreaded())) {
            var scanned = ActivationStatistics.collect(full, in, Batches.floats(samples(11, 5).iterator()),
                    BatchBudget.fixed(4), "test", TENSORS, Map.of());
            // another batching: min and max are exact whatever the batches
            var inSession = ActivationStatistics.collectMinMax(full, in, Batches.floats(samples(11, 5).iterator()),
                    BatchBudget.fixed(3), "test", TENSORS);
            assertEquals(11, inSession.samples());
            for (String t : TENSORS) {
                MinMaxStats a = scanned.stats().get(t).minMax(), b = inSession.stats().get(t).minMax();
                assertEquals(a.count(), b.count(), t);
                assertEquals(a.min(), b.min(), 0.0, t);
                assertEquals(a.max(), b.max(), 0.0, t);
                assertTrue(Double.isNaN(b.sum()), t + ": sums are not kept");
            }
            // the relu output's minimum is 0 exactly, its count 11 x 144
            assertEquals(0.0, inSession.stats().get("r").minMax().min(), 0.0);
            assertEquals(11 * 144, inSession.stats().get("f").minMax().count());
        }
    }

    @Test
    void oneHistogramPassEqualsTheHistogramsOfTheCapturedTensorsWhateverTheBatching() {
        OnnxModel m = model(13);
        ModelInputs in = ModelInputs.singleFloat("x", new long[] {2, 6, 6});
        try (ModelRunner full = ModelRunner.open(m, TENSORS, RunnerOptions.singleThreaded())) {
            // the reference: every captured value of all 11 samples in one batch, histogrammed at once
            var all = full.run(new io.quantcal.kernels.runtime.FloatTensor("x", new long[] {11, 2, 6, 6}, TestModels.concat(samples(11, 5).toArray(new float[0][]))));
            for (int batch : new int[] {1, 4, 11}) {
                var p = ActivationStatistics.collectHistograms(full, in, Batches.floats(samples(11, 5).iterator()),
                        BatchBudget.fixed(batch), "test", TENSORS);
                assertEquals(11, p.samples());
                for (String t : TENSORS) {
                    io.quantcal.kernels.stats.ExponentHistogram want =
                            io.quantcal.kernels.stats.ExponentHistogram.of(t, all.get(t).data());
                    assertEquals(want, p.stats().get(t).values(), t + " in batches of " + batch);
                    assertEquals(want.min(), p.stats().get(t).minMax().min(), 0.0, t);
                    assertEquals(want.max(), p.stats().get(t).minMax().max(), 0.0, t);
                }
                // half of a ReLU's outputs or so are exact zeros, counted as such
                assertTrue(p.stats().get("r").values().zeros() > 0);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(floats = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN})
    void aNonFiniteValueIsAnErrorNamingTheTensorAndTheIndex(float value) {
        try (ModelRunner r = ModelRunner.open(model(13), List.of("x", "c"), RunnerOptions.singleThreaded())) {
            float[] bad = samples(1, 2).get(0);
            bad[7] = value;
            for (boolean histograms : new boolean[] {false, true}) {
                ModelInputs in = ModelInputs.singleFloat("x", new long[] {2, 6, 6});
                var samples = Batches.floats(List.of(samples(1, 3).get(0), bad).iterator());
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                    if (histograms) ActivationStatistics.collectHistograms(r, in, samples, BatchBudget.fixed(2), "test", List.of("x", "c"));
                    else ActivationStatistics.collectMinMax(r, in, samples, BatchBudget.fixed(2), "test", List.of("x", "c"));
                });
                // the second batch: the bad sample alone, its value at index 7
                assertEquals("tensor x: value " + value + " at index 7 is not finite; calibration statistics need finite values",
                        e.getMessage());
            }
        }
    }
}
