package io.quantcal.kernels.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import io.quantcal.kernels.runtime.MemoryException;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The batch-size rule: B = floor(budget / (bytes per sample x 2)), at most the configured batch, at least 1. */
class BatchBudgetTest {

    private static final long MIB = 1L << 20;

    @Test
    void batchIsTheBudgetOverTwiceOneSamplesBytes() {
        // ResNet-50-like: 37 MiB captured per sample, 768 MiB per task: 768 / 74 = 10.4 -> 10 samples
        assertEquals(10, new BatchBudget(768 * MIB, 32).batchSize(37 * MIB, "run"));
        // exactly fitting: 100 MiB / (25 MiB x 2) = 2
        assertEquals(2, new BatchBudget(100 * MIB, 32).batchSize(25 * MIB, "run"));
        // one byte less and only one fits
        assertEquals(1, new BatchBudget(100 * MIB - 1, 32).batchSize(25 * MIB, "run"));
        // a small model is held to the configured batch size
        assertEquals(32, new BatchBudget(768 * MIB, 32).batchSize(3176, "run"));
        assertEquals(8, new BatchBudget(768 * MIB, 8).batchSize(MIB, "run"));
        // no limit: always the configured batch
        assertEquals(32, BatchBudget.fixed(32).batchSize(Long.MAX_VALUE / 2, "run"));
    }

    @Test
    void aSampleLargerThanTheBudgetIsAnErrorNamingTheSizesAndTheKey() {
        MemoryException e = assertThrows(MemoryException.class,
                () -> new BatchBudget(768 * MIB, 32).batchSize(400 * MIB, "calibrate: det.onnx, 120 captured tensors"));
        String m = e.getMessage();
        assertTrue(m.startsWith("calibrate: det.onnx, 120 captured tensors: one sample's inputs and returned tensors take"
                + " 400.0 MiB (x2: ONNX Runtime's buffers and their Java copy, 800.0 MiB), more than the memory budget of"
                + " 768.0 MiB per task (quantcal.runtime.memory-budget)"), m);
    }

    /** x [N,2,6,6] -> Conv c [N,4,6,6] -> Relu -> Flatten [N,144] -> Gemm logits [N,5]. */
    private static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(7);
        b.conv("conv", "x", "c", 2, 4, 3, 1, 1, 1, true);
        b.relu("relu", "c", "r");
        b.node(Graphs.node("Flatten", "flatten", List.of("r"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc", "f", "logits", 144, 5, false, true);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 2, 6, 6)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    private static List<float[]> samples(int n) {
        Random r = new Random(3);
        List<float[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(TestModels.gaussian(r, 72, 1.0));
        return out;
    }

    @Test
    void batchesFollowTheBudgetAfterAOneSampleMeasurement() {
        // one sample: input 72 floats + logits 5 + captured c 4x6x6 = 144: 221 floats = 884 bytes, x2 = 1768 bytes.
        // A budget of 6000 bytes holds 3 samples (5304), not 4 (7072).
        try (ModelRunner r = ModelRunner.open(model(), List.of("c"), RunnerOptions.singleThreaded())) {
            List<Integer> sizes = new ArrayList<>();
            long n = Batches.forEach(r, "x", new long[] {2, 6, 6}, samples(10).iterator(), new BatchBudget(6000, 32), "test",
                    out -> sizes.add((int) out.get("c").shape()[0]));
            assertEquals(10, n);
            assertEquals(List.of(1, 3, 3, 3), sizes);
            // the configured batch size still caps it
            sizes.clear();
            Batches.forEach(r, "x", new long[] {2, 6, 6}, samples(10).iterator(), new BatchBudget(6000, 2), "test",
                    out -> sizes.add((int) out.get("c").shape()[0]));
            assertEquals(List.of(1, 2, 2, 2, 2, 1), sizes);
        }
    }

    @Test
    void aModelWhoseSingleSampleExceedsTheBudgetStopsOnItsFirstRun() {
        try (ModelRunner r = ModelRunner.open(model(), List.of("c"), RunnerOptions.singleThreaded())) {
            List<Integer> sizes = new ArrayList<>();
            MemoryException e = assertThrows(MemoryException.class, () -> Batches.forEach(r, "x", new long[] {2, 6, 6},
                    samples(10).iterator(), new BatchBudget(1700, 32), "calibrate: tiny.onnx, 1 captured tensor",
                    out -> sizes.add(1)));
            assertTrue(e.getMessage().contains("tiny.onnx, 1 captured tensor: one sample's inputs and returned tensors take"
                    + " 0.0 MiB (x2"), e.getMessage());
            assertEquals(List.of(), sizes, "no batch reached the statistics");
        }
    }

    @Test
    void statisticsDoNotDependOnTheBudget() {
        try (ModelRunner r = ModelRunner.open(model(), List.of("c"), RunnerOptions.singleThreaded())) {
            var fixed = ActivationStatistics.collect(r, "x", new long[] {2, 6, 6}, samples(10).iterator(), 32,
                    List.of("c"), Map.of());
            var budgeted = ActivationStatistics.collect(r,
                    io.quantcal.kernels.runtime.ModelInputs.singleFloat("x", new long[] {2, 6, 6}),
                    Batches.floats(samples(10).iterator()), new BatchBudget(6000, 32), "test", List.of("c"), Map.of());
            assertEquals(fixed.samples(), budgeted.samples());
            var a = fixed.stats().get("c").minMax();
            var b = budgeted.stats().get("c").minMax();
            assertEquals(a.count(), b.count());
            assertEquals(a.min(), b.min());
            assertEquals(a.max(), b.max());
        }
    }

    @Test
    void pinnedCaptureRunsKeepTheirCapturedValuesWithinTheCacheSizedBound() {
        // x [N,1,128,128] -> Conv c [N,4,128,128]: 65536 floats = 256 KiB captured per sample, so 2 MiB holds 8
        TestModels.Builder b = new TestModels.Builder(5);
        b.conv("conv", "x", "c", 1, 4, 3, 1, 1, 1, true);
        b.relu("relu", "c", "r");
        OnnxModel big = b.build(13, List.of(Graphs.floatValue("x", -1, 1, 128, 128)), List.of(Graphs.floatValue("r", -1, 4, 128, 128)));
        Random rnd = new Random(4);
        List<float[]> xs = new ArrayList<>();
        for (int i = 0; i < 20; i++) xs.add(TestModels.gaussian(rnd, 128 * 128, 1.0));
        try (ModelRunner r = ModelRunner.open(big, List.of("c"), RunnerOptions.singleThreaded())) {
            var inputs = io.quantcal.kernels.runtime.ModelInputs.singleFloat("x", new long[] {1, 128, 128});
            for (int[] c : new int[][] {{32, 8}, {5, 5}}) { // configured batch, samples per run after the first
                List<Integer> sizes = new ArrayList<>();
                long n = Batches.forEachPinned(r, inputs, Batches.floats(xs.iterator()), BatchBudget.fixed(c[0]), "test",
                        List.of("c"), (k, t, v) -> {
                            sizes.add(k);
                            assertEquals(k * 65536 * 4, v.remaining());
                        });
                assertEquals(20, n);
                List<Integer> want = new ArrayList<>(List.of(1));
                for (int left = 19; left > 0; left -= Math.min(left, c[1])) want.add(Math.min(left, c[1]));
                assertEquals(want, sizes, "configured batch " + c[0]);
            }
        }
        assertEquals(1, Batches.cachedRun(Batches.CACHED_CAPTURE_BYTES + 1));
        assertEquals(1, Batches.cachedRun(Batches.CACHED_CAPTURE_BYTES));
        assertEquals(2, Batches.cachedRun(Batches.CACHED_CAPTURE_BYTES / 2));
        assertEquals(11, Batches.cachedRun(4 * 44_750)); // the bundled example: 6 tensors, 44 750 values per sample
    }

    @Test
    void capturesOverTheBudgetReportWhatEachTensorTakesAndGroupIntoRunsThatFit() {
        // one sample: input x 72 floats (288 bytes); captured c and r, 144 floats each (576 bytes): 1440 bytes, x2 = 2880
        try (ModelRunner r = ModelRunner.open(model(), List.of("c", "r"), RunnerOptions.singleThreaded())) {
            var inputs = io.quantcal.kernels.runtime.ModelInputs.singleFloat("x", new long[] {2, 6, 6});
            List<String> seen = new ArrayList<>();
            CaptureOverBudget e = assertThrows(CaptureOverBudget.class, () -> Batches.forEachPinned(r, inputs,
                    Batches.floats(samples(10).iterator()), new BatchBudget(2000, 32), "calibrate: tiny.onnx, 2 captured tensors",
                    List.of("c", "r"), (k, t, v) -> seen.add(t)));
            assertEquals(Map.of("c", 576L, "r", 576L), e.sampleBytes());
            assertEquals(288, e.inputBytes());
            assertEquals(List.of("c", "r"), seen, "only the first (one-sample) run");
            assertTrue(e.getMessage().startsWith("calibrate: tiny.onnx, 2 captured tensors: one sample's inputs and returned"
                    + " tensors take 0.0 MiB (x2"), e.getMessage());
            // 2000 / 2 - 288 = 712 bytes per group: c and r apart
            assertEquals(List.of(List.of("c"), List.of("r")), CaptureOverBudget.groups(List.of("c", "r"), e.sampleBytes(),
                    e.inputBytes(), new BatchBudget(2000, 32), "test"));
            // and each group runs within that budget
            long n = Batches.forEachPinned(r, inputs, Batches.floats(samples(10).iterator()), new BatchBudget(2000, 32),
                    "test", List.of("c"), (k, t, v) -> assertEquals("c", t));
            assertEquals(10, n);
        }
    }

    @Test
    void groupsKeepTheTensorsOrderAndATensorAloneOverTheBudgetIsAnErrorNamingIt() {
        Map<String, Long> b = Map.of("a", 300L, "b", 300L, "c", 500L, "d", 100L);
        // budget 2000: 1000 per copy, less the inputs' 100: 900 per group
        assertEquals(List.of(List.of("a", "b"), List.of("c", "d")),
                CaptureOverBudget.groups(List.of("a", "b", "c", "d"), b, 100, new BatchBudget(2000, 8), "t"));
        // a tensor the measuring run did not return (a mean-only one, say) counts nothing
        assertEquals(List.of(List.of("a", "b", "e"), List.of("c", "d")),
                CaptureOverBudget.groups(List.of("a", "b", "e", "c", "d"), b, 100, new BatchBudget(2000, 8), "t"));
        // budget 1000: 400 per group; c (500) alone does not fit
        MemoryException e = assertThrows(MemoryException.class,
                () -> CaptureOverBudget.groups(List.of("a", "b", "c", "d"), b, 100, new BatchBudget(1000, 8), "calibrate: m.onnx"));
        assertTrue(e.getMessage().startsWith("calibrate: m.onnx: tensor c alone takes 0.0 MiB for one sample (x2, with the"
                + " inputs' 0.0 MiB), more than the memory budget of 0.0 MiB per task (quantcal.runtime.memory-budget)"),
                e.getMessage());
    }

    @Test
    void aComparisonOverTheBudgetReportsEachLayerPairsBytes() {
        // one sample: input 288 bytes, logits 20 bytes from each model, layers c and r 576 bytes from each model:
        // 288 + 40 + 2 x 1152 = 2632 bytes, x2 = 5264 > 4000
        try (ModelRunner a = ModelRunner.open(model(), List.of("c", "r"), RunnerOptions.singleThreaded());
             ModelRunner b = ModelRunner.open(model(), List.of("c", "r"), RunnerOptions.singleThreaded())) {
            var inputs = io.quantcal.kernels.runtime.ModelInputs.singleFloat("x", new long[] {2, 6, 6});
            List<ModelComparison.Labelled> xs = new ArrayList<>();
            for (float[] x : samples(6)) xs.add(new ModelComparison.Labelled(x, -1));
            CaptureOverBudget e = assertThrows(CaptureOverBudget.class, () -> ModelComparison.compare(a, b, inputs, "logits",
                    xs.iterator(), new BatchBudget(4000, 8), "evaluate: tiny.onnx", List.of("c", "r"), List.of("c", "r")));
            assertEquals(Map.of("c", 1152L, "r", 1152L), e.sampleBytes());
            assertEquals(328, e.inputBytes(), "inputs and both models' outputs");
            // 4000 / 2 − 328 = 1672 per group: c and r apart, and each then fits
            assertEquals(List.of(List.of("c"), List.of("r")), CaptureOverBudget.groups(List.of("c", "r"), e.sampleBytes(),
                    e.inputBytes(), new BatchBudget(4000, 8), "t"));
            var one = ModelComparison.compare(a, b, inputs, "logits", xs.iterator(), new BatchBudget(4000, 8), "t",
                    List.of("c"), List.of("c"));
            assertEquals(6, one.samples());
        }
    }
}
