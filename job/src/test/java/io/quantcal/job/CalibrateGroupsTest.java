package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.job.pipeline.CalibratePass;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqPlacement;
import io.quantcal.kernels.onnx.QdqProfile;
import io.quantcal.kernels.onnx.TestModels;
import io.quantcal.kernels.stats.Calibrators;
import io.quantcal.kernels.stats.TensorStats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * When one sample's captured tensors exceed the memory budget, calibrate captures them in groups that fit, one pass
 * over the data each, and gets the statistics one pass gets (PaddleOCR's detector at 640×640 captures 388 MiB per
 * sample in the ort profile, more than the default 768 MiB budget holds twice).
 */
class CalibrateGroupsTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /**
     * x [N, 1, 64, 64] → conv1 (16 channels) → relu → conv2 → relu → GAP → flatten → fc: each ReLU output is 256 KiB a
     * sample, so one sample's captures (x, both, and the small ones) take about 528 KiB, more than half of 1 MiB.
     */
    static OnnxModel wide() {
        return wide(16);
    }

    static OnnxModel wide(int c) {
        TestModels.Builder b = new TestModels.Builder(17);
        b.conv("conv1", "x", "c1", 1, c, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", c, c, 3, 1, 1, 1, true).relu("relu2", "c2", "r2");
        b.classifier("r2", c, 10);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 64, 64)), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    @Test
    void capturesOverTheBudgetRunInGroupsAndGiveTheStatisticsOfOnePass() throws Exception {
        OnnxModel model = wide();
        Path file = tmp.resolve("wide.onnx");
        Files.write(file, model.toByteArray());
        List<String> tensors = QdqPlacement.plan(model, QdqProfile.ORT).ownedTensors();
        for (String calibrator : new String[] {"minmax", "entropy"}) {
            CalibratePass.Collected[] got = new CalibratePass.Collected[2];
            String[] budgets = {"1g", "1m"};
            for (int k = 0; k < 2; k++) {
                QuantcalConfig cfg = JobFixtures.config(file.toString(), JobFixtures.CALIB, tmp.resolve("out").toString(),
                        "calibration.limit=24", "calibration.batch-size=8", "calibration.preprocess.resize=64",
                        "calibration.preprocess.width=64", "calibration.preprocess.height=64",
                        "runtime.memory-budget=" + budgets[k]);
                var input = io.quantcal.job.data.InputBinding.of(model, cfg, cfg.calibration());
                JavaRDD<Sample> samples = SampleSets.load(spark(), cfg, cfg.calibration(), input, 2).cache();
                try {
                    io.quantcal.kernels.runtime.SessionCache.resetPeak();
                    got[k] = CalibratePass.collect(spark(), cfg, samples, model, tensors, Calibrators.byName(calibrator, 99.99));
                    // one session at a time: a group's pass closes the one before (the measuring run's, the last group's)
                    assertEquals(1, io.quantcal.kernels.runtime.SessionCache.peak(), calibrator + ", budget " + budgets[k]);
                } finally {
                    samples.unpersist(true);
                    // what a run's calibrate pass does when it ends: the other tests count the JVM's open sessions
                    io.quantcal.kernels.runtime.SessionCache.evict(model.sha256());
                }
            }
            assertEquals(1, got[0].passes(), calibrator);
            // 1 MiB / 2 copies = 512 KiB, less the 16 KiB input: x and relu1's output (272 KiB), then the rest
            assertEquals(2, got[1].passes(), calibrator);
            assertEquals(24, got[1].samples());
            assertEquals(got[0].stats().keySet(), got[1].stats().keySet());
            for (String t : tensors) {
                TensorStats a = got[0].stats().get(t), b = got[1].stats().get(t);
                assertEquals(a.minMax().count(), b.minMax().count(), t);
                assertEquals(a.minMax().min(), b.minMax().min(), t);
                assertEquals(a.minMax().max(), b.minMax().max(), t);
                if (a.histogram() != null) assertArrayEquals(a.histogram().counts(), b.histogram().counts(), t);
            }
        }
    }

    @Test
    void evaluateComparesLayersInGroupsWhenOneSampleExceedsTheBudgetWithTheSameFigures() throws Exception {
        // 8 channels: calibrate's captures (about 272 KiB a sample) fit 1 MiB / 2, evaluate's do not: it returns both
        // models' layer outputs, 2 x 128 KiB per ReLU output, about 528 KiB a sample
        OnnxModel model = wide(8);
        Path file = tmp.resolve("wide.onnx");
        Files.write(file, model.toByteArray());
        com.fasterxml.jackson.databind.JsonNode[] ev = new com.fasterxml.jackson.databind.JsonNode[2];
        String[] budgets = {"1g", "1m"};
        for (int k = 0; k < 2; k++) {
            String output = tmp.resolve("out-" + budgets[k]).toString();
            QuantcalConfig cfg = JobFixtures.config(file.toString(), JobFixtures.CALIB, output,
                    "calibration.limit=24", "evaluation.limit=24", "calibration.batch-size=8",
                    "calibration.preprocess.resize=64", "calibration.preprocess.width=64", "calibration.preprocess.height=64",
                    "runtime.memory-budget=" + budgets[k], "pipeline=[calibrate, export, evaluate]");
            io.quantcal.kernels.runtime.SessionCache.resetPeak();
            io.quantcal.job.QuantcalJob.run(spark(), cfg, out);
            // the FP32 and the QDQ model's sessions, two at a time whether or not evaluate groups its layers
            assertEquals(2, io.quantcal.kernels.runtime.SessionCache.peak(), "budget " + budgets[k]);
            ev[k] = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Path.of(output, "run.json").toFile())
                    .path("passes").path("evaluate");
        }
        assertEquals(1, ev[0].path("passes_over_data").asInt());
        assertEquals(2, ev[1].path("passes_over_data").asInt(), ev[1].toString());
        assertEquals(24, ev[1].path("samples").asInt());
        for (String key : new String[] {"top1_agreement", "top1_fp32", "top1_quantized", "output_sqnr_db", "output_cosine"}) {
            assertEquals(ev[0].path(key).asDouble(), ev[1].path(key).asDouble(), 1e-9, key);
        }
        var a = ev[0].path("layer_sqnr_db");
        var b = ev[1].path("layer_sqnr_db");
        assertEquals(a.size(), b.size());
        a.fieldNames().forEachRemaining(l -> assertEquals(a.path(l).asDouble(), b.path(l).asDouble(), 1e-6, l));
        org.junit.jupiter.api.Assertions.assertTrue(a.size() >= 3, a.toString());
    }
}
