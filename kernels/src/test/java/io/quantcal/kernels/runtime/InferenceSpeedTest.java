package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class InferenceSpeedTest {

    /**
     * x [N, 16, 32, 32] through {@code depth} 3×3 Convs of 16 channels: enough work per Conv (about 9 M multiply-adds
     * at batch 4) that ONNX Runtime's fixed cost per op and run does not hide the factor.
     */
    private static OnnxModel convs(int depth) {
        TestModels.Builder b = new TestModels.Builder(5);
        String x = "x";
        for (int i = 0; i < depth; i++) {
            String y = i == depth - 1 ? "y" : "h" + i;
            b.conv("conv" + i, x, y, 16, 16, 3, 1, 1, 1, true);
            x = y;
        }
        return b.build(13, List.of(Graphs.floatValue("x", -1, 16, 32, 32)), List.of(Graphs.floatValue("y", -1, 16, 32, 32)));
    }

    private static Map<String, InputTensor> batch(int n) {
        return Map.of("x", InputTensor.of(FloatTensor.of("x", TestModels.gaussian(new Random(3), n * 16 * 1024, 1.0), n, 16, 32, 32)));
    }

    @Test
    void aModelWithEightTimesTheWorkRunsSeveralTimesSlowerAndTheRatioSaysWhichWay() {
        OnnxModel light = convs(1), heavy = convs(8);
        RunnerOptions one = RunnerOptions.singleThreaded();
        InferenceSpeed.Result slower = InferenceSpeed.measure(light, heavy, batch(4), one, 200_000_000L, 5, 200);
        assertEquals(4, slower.batch());
        assertEquals(1, slower.intraOpThreads());
        assertTrue(slower.runs() >= 5 && slower.runs() <= 200, "runs " + slower.runs());
        assertEquals(slower.fp32Ms() / slower.quantizedMs(), slower.speedup(), 1e-12);
        // eight times the convolutions: well below 1 however loaded the machine is (both take turns)
        assertTrue(slower.speedup() < 0.5, "speedup " + slower.speedup());
        InferenceSpeed.Result faster = InferenceSpeed.measure(heavy, light, batch(4), one, 200_000_000L, 5, 200);
        assertTrue(faster.speedup() > 2, "speedup " + faster.speedup());
        // no budget: the minimum number of runs; three medians on a busy machine only say which way (one measured 1.89)
        InferenceSpeed.Result quick = InferenceSpeed.measure(heavy, light, batch(4), one, 0L, 3, 3);
        assertEquals(3, quick.runs());
        assertTrue(quick.speedup() > 1, "speedup " + quick.speedup());
    }

    @Test
    void aFeedRunsOnlyOnItsOwnRunnerAndTimesEachRun() {
        OnnxModel m = convs(1);
        try (ModelRunner a = ModelRunner.open(m, RunnerOptions.singleThreaded());
             ModelRunner b = ModelRunner.open(convs(2), RunnerOptions.singleThreaded());
             ModelRunner.Feed f = a.feed(batch(2))) {
            assertTrue(a.timeRun(f) > 0);
            assertThrows(IllegalArgumentException.class, () -> b.timeRun(f));
            // the feed is checked as runInputs checks its inputs
            assertThrows(io.quantcal.kernels.onnx.ModelException.class, () -> a.feed(Map.of()));
        }
    }

    @Test
    void badArgumentsAreRefused() {
        OnnxModel m = convs(1);
        assertThrows(IllegalArgumentException.class, () -> InferenceSpeed.measure(m, m, Map.of(), RunnerOptions.singleThreaded(), 0, 1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> InferenceSpeed.measure(m, m, batch(1), RunnerOptions.singleThreaded(), 0, 5, 2));
        assertEquals("InferenceSpeed: need 1 <= minRuns <= maxRuns, got 5, 2", e.getMessage());
    }
}
