package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.pipeline.LearnPass;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The learn pass (LSQ) end to end on the bundled ResNet at W4A4 per-channel with test-sized settings: the same scale
 * table (every column, bit for bit), QDQ model and learn_weights for 1 and 3 partitions with
 * {@code pipeline = [calibrate, learn, export]}; every layer's weight and input rows say lsq with the layer's MSE
 * no higher than with the calibrated parameters (lower on most layers); the QDQ model holds the table's codes and
 * the learned steps.
 */
class LearnPassTest extends SparkJobTest {

    static final String[] LSQ = {"quantization.weights.bits=4", "quantization.activations.bits=4",
            "pipeline=[calibrate,learn,export]", "calibration.limit=40", "calibration.batch-size=6", "learn.samples=16",
            "learn.iterations=100", "output.overwrite=true"};

    @TempDir
    Path tmp;

    record Run(QuantcalJob.Result result, List<Row> table, byte[] qdq, Map<String, List<Integer>> codes) {}

    Run run(String name, int partitions, String... more) throws Exception {
        String output = tmp.resolve(name + "-p" + partitions).toString();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output,
                JobFixtures.concat(JobFixtures.concat(LSQ, more), "calibration.partitions=" + partitions)), out);
        Path dir = AdaRoundPassTest.local(r.output());
        List<Row> table = spark().read().parquet(r.output() + "/" + QuantcalJob.SCALE_TABLE).collectAsList();
        Map<String, List<Integer>> codes = new LinkedHashMap<>();
        for (Row w : spark().read().parquet(r.output() + "/" + LearnPass.WEIGHTS_TABLE).orderBy("tensor").collectAsList()) {
            codes.put(w.getString(0), w.getList(2));
        }
        return new Run(r, table, Files.readAllBytes(dir.resolve("model_qdq.onnx")), codes);
    }

    static int column(String name) {
        return PartitionInvarianceTest.column(name);
    }

    @Test
    void sameTableForOneAndThreePartitionsAndEveryLayerLearned() throws Exception {
        Run one = run("lsq", 1);
        Run three = run("lsq", 3);
        PartitionInvarianceTest.assertSameTable("learn lsq: 1 vs 3 partitions", one.table(), three.table());
        assertArrayEquals(one.qdq(), three.qdq(), "QDQ model, 1 vs 3 partitions");
        assertEquals(one.codes(), three.codes(), "learn_weights, 1 vs 3 partitions");

        OnnxModel qdq = OnnxModel.load(Path.of(java.net.URI.create(one.result().output())).resolve("model_qdq.onnx"));
        List<QuantizableNode> nodes = OnnxModel.load(Path.of(RESNET)).quantizableNodes();
        assertEquals(7, one.codes().size());
        int lower = 0, shared = 0;
        for (QuantizableNode n : nodes) {
            int weights = 0, inputs = 0;
            for (Row r : one.table()) {
                if (!r.getString(column("node")).equals(n.name())) continue;
                String role = r.getString(column("role"));
                boolean own = role.equals("weight") || role.equals("activation") && r.getString(column("tensor")).equals(n.input());
                if (!own) continue;
                assertEquals("lsq", r.getString(column("method")), n.name() + " " + role);
                if (role.equals("activation") && r.get(column("metric")) == null) {
                    // a tensor read by several layers (block2/conv1 and block2/proj) has one Q/DQ pair: its first
                    // reader's learned step, and that reader's row carries the metric
                    shared++;
                    inputs++;
                    continue;
                }
                assertEquals("mse", r.getString(column("metric")), n.name() + " " + role);
                double after = r.getDouble(column("metric_value")), before = r.getDouble(column("metric_baseline"));
                Assertions.assertTrue(after <= before, n.name() + ": lsq mse " + after + " <= calibrated " + before);
                if (role.equals("weight")) {
                    weights++;
                    if (r.getInt(column("channel")) == 0 && after < before) lower++;
                    // the QDQ model's weight scale is the table's
                    float[] s = qdq.initializerFloats(n.weight() + "_scale");
                    assertEquals((float) r.getDouble(column("scale")), s[r.getInt(column("channel"))], n.name());
                } else {
                    inputs++;
                }
            }
            Assertions.assertTrue(weights > 1, n.name() + ": per-channel weight rows");
            assertEquals(1, inputs, n.name() + ": its input row");
            int[] want = one.codes().get(n.weight()).stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(want, JobFixtures.weightCodes(qdq, n.weight() + "_quantized"), n.name() + ": QDQ codes = learn_weights");
        }
        Assertions.assertTrue(lower >= 5, lower + " of 7 layers reconstruct better with LSQ than with minmax");
        assertEquals(1, shared, "block2/proj shares its input with block2/conv1");
    }

    @Test
    void updatedWeightsStayOnTheGridAndInTheQdqModel() throws Exception {
        Run steps = run("lsq-fp", 1, "learn.inputs=fp");
        Run w = run("lsq-w", 1, "learn.inputs=fp", "learn.update-weights=true", "learn.weight-learning-rate=1e-2");
        OnnxModel qdq = OnnxModel.load(Path.of(java.net.URI.create(w.result().output())).resolve("model_qdq.onnx"));
        int changed = 0;
        for (var e : w.codes().entrySet()) {
            int[] want = e.getValue().stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(want, JobFixtures.weightCodes(qdq, e.getKey() + "_quantized"), e.getKey());
            for (int q : want) Assertions.assertTrue(q >= -7 && q <= 7, e.getKey() + ": code " + q + " on the W4 grid");
            if (!e.getValue().equals(steps.codes().get(e.getKey()))) changed++;
        }
        Assertions.assertTrue(changed > 0, "fine-tuned weights change some codes");
        Assertions.assertTrue(w.result().summary().toString().contains("update_weights=true"));
    }

    /**
     * learn.rounding = adaround: rows say lsq+adaround, every layer's MSE is no higher than calibrated (lower on most),
     * and each code in the QDQ model and learn_weights is AdaRound's: ⌊W/s₀⌋ or ⌊W/s₀⌋ + 1 on the calibrated grid s₀
     * (clipped to the W4 grid), whatever weight step was learned.
     */
    @Test
    void adaroundRoundingWithLsqSteps() throws Exception {
        Run r = run("lsq-ada", 1, "learn.inputs=fp", "learn.rounding=adaround");
        String calibrated = tmp.resolve("calibrated").toString();
        QuantcalJob.Result c = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, calibrated,
                JobFixtures.concat(LSQ, "pipeline=[calibrate,export]")), out);
        Map<String, double[]> s0 = new LinkedHashMap<>();
        for (Row row : spark().read().parquet(c.output() + "/" + QuantcalJob.SCALE_TABLE).collectAsList()) {
            if (!row.getString(column("role")).equals("weight")) continue;
            double[] s = s0.computeIfAbsent(row.getString(column("tensor")), k -> new double[64]);
            s[row.getInt(column("channel"))] = row.getDouble(column("scale"));
        }
        OnnxModel fp = OnnxModel.load(Path.of(RESNET));
        OnnxModel qdq = OnnxModel.load(Path.of(java.net.URI.create(r.result().output())).resolve("model_qdq.onnx"));
        com.fasterxml.jackson.databind.JsonNode learn = AdaRoundPassTest.runJson(r.result().output()).at("/passes/learn");
        assertEquals("lsq+adaround", learn.get("method").asText());
        assertEquals("adaround", learn.get("rounding").asText());
        // the cluster estimate holds the layers' task times (FP inputs: one wave of independent tasks)
        long ms = 0, longest = 0;
        for (var it = learn.at("/layers").elements(); it.hasNext(); ) {
            long t = it.next().get("ms").asLong();
            ms += t;
            longest = Math.max(longest, t);
        }
        assertEquals(1, learn.at("/cluster_estimate/waves").asInt());
        assertEquals(ms / 1000.0, learn.at("/cluster_estimate/task_s").asDouble(), 0.008);
        assertEquals(longest / 1000.0, learn.at("/cluster_estimate/critical_path_s").asDouble(), 0.002);
        int lower = 0, moved = 0;
        for (QuantizableNode n : fp.quantizableNodes()) {
            com.fasterxml.jackson.databind.JsonNode l = learn.at("/layers").get(n.name());
            Assertions.assertTrue(l.get("mse_learned").asDouble() <= l.get("mse_calibrated").asDouble(), n.name() + ": " + l);
            if (l.get("mse_learned").asDouble() < l.get("mse_calibrated").asDouble()) lower++;
            int[] codes = r.codes().get(n.weight()).stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(codes, JobFixtures.weightCodes(qdq, n.weight() + "_quantized"), n.name() + ": QDQ codes = learn_weights");
            float[] w = fp.initializerFloats(n.weight());
            double[] s = s0.get(n.weight());
            int depth = w.length / (int) n.weightShape()[0];
            for (int k = 0; k < w.length; k++) {
                double f = Math.floor(w[k] / (float) s[k / depth]);
                Assertions.assertTrue(codes[k] == Math.max(-7, Math.min(7, f)) || codes[k] == Math.max(-7, Math.min(7, f + 1)),
                        n.name() + "[" + k + "]: code " + codes[k] + " for W/s0 = " + w[k] / s[k / depth]);
            }
            float[] learned = qdq.initializerFloats(n.weight() + "_scale");
            for (int ch = 0; ch < learned.length; ch++) if (learned[ch] != (float) s[ch]) moved++;
        }
        Assertions.assertTrue(lower >= 5, lower + " of 7 layers reconstruct better with lsq+adaround than calibrated");
        Assertions.assertTrue(moved > 0, "some weight steps were learned");
        for (Row row : r.table()) {
            if (row.getString(column("role")).equals("weight")) assertEquals("lsq+adaround", row.getString(column("method")));
        }
    }

    @Test
    void qilRowsPruningRatiosAndCodes() throws Exception {
        Run q = run("qil", 1, "learn.method=qil", "learn.inputs=fp");
        OnnxModel qdq = OnnxModel.load(Path.of(java.net.URI.create(q.result().output())).resolve("model_qdq.onnx"));
        com.fasterxml.jackson.databind.JsonNode layers = AdaRoundPassTest.runJson(q.result().output()).at("/passes/learn/layers");
        assertEquals("qil", AdaRoundPassTest.runJson(q.result().output()).at("/passes/learn/method").asText());
        assertEquals(7, layers.size());
        int lower = 0;
        for (QuantizableNode n : OnnxModel.load(Path.of(RESNET)).quantizableNodes()) {
            com.fasterxml.jackson.databind.JsonNode l = layers.get(n.name());
            double pruned = l.get("weights_pruned").asDouble(), clipped = l.get("weights_clipped").asDouble();
            Assertions.assertTrue(pruned >= 0 && pruned < 1 && clipped >= 0 && clipped < 1, n.name() + ": " + l);
            Assertions.assertTrue(l.get("mse_learned").asDouble() <= l.get("mse_calibrated").asDouble(), n.name());
            if (l.get("mse_learned").asDouble() < l.get("mse_calibrated").asDouble()) lower++;
            int[] want = q.codes().get(n.weight()).stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(want, JobFixtures.weightCodes(qdq, n.weight() + "_quantized"), n.name() + ": QDQ codes = learn_weights");
            long zeros = java.util.Arrays.stream(want).filter(x -> x == 0).count();
            Assertions.assertTrue(zeros >= Math.round(pruned * want.length), n.name() + ": pruned weights have code 0");
        }
        Assertions.assertTrue(lower >= 5, lower + " of 7 layers reconstruct better with QIL than with minmax");
        for (Row r : q.table()) {
            if (r.getString(column("role")).equals("weight")) assertEquals("qil", r.getString(column("method")));
        }
        // the inputs after ReLU (unsigned, zero point 0) get an interval, so the pruning ratio of inputs is reported
        Assertions.assertTrue(layers.get("/block1/conv1/Conv").has("inputs_pruned"), layers.get("/block1/conv1/Conv").toString());
        io.quantcal.job.config.ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.quantcal.job.config.ConfigException.class, () -> JobFixtures.config(RESNET, JobFixtures.CALIB, "out",
                        JobFixtures.concat(LSQ, "learn.method=qil", "quantization.weights.symmetric=false")));
        Assertions.assertTrue(e.getMessage().contains("quantcal.learn.method"), e.getMessage());
    }

    @Test
    void resumeSkipsFinishedLayersFromJsonAndGivesTheSameTable() throws Exception {
        Run first = run("resume", 1);
        com.fasterxml.jackson.databind.JsonNode s1 = AdaRoundPassTest.runJson(first.result().output()).at("/passes/learn");
        assertEquals(7, s1.get("layers_learned").asInt());
        Run again = run("resume", 1);
        com.fasterxml.jackson.databind.JsonNode s2 = AdaRoundPassTest.runJson(again.result().output()).at("/passes/learn");
        assertEquals(0, s2.get("layers_learned").asInt());
        assertEquals(7, s2.get("layers_resumed").asInt());
        PartitionInvarianceTest.assertSameTable("learn: resumed vs learned", first.table(), again.table());
        assertArrayEquals(first.qdq(), again.qdq());

        // a killed run: one layer's file missing, only that layer is learned again; the files are JSON
        Path cache = AdaRoundPassTest.local(s2.get("cache").asText());
        List<Path> files;
        try (var l = Files.list(cache)) {
            files = l.filter(p -> p.toString().endsWith(".json") && !p.getFileName().toString().equals("key.json")).sorted().toList();
        }
        assertEquals(7, files.size());
        com.fasterxml.jackson.databind.JsonNode layer = new com.fasterxml.jackson.databind.ObjectMapper()
                .enable(com.fasterxml.jackson.core.json.JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS.mappedFeature())
                .readTree(files.get(0).toFile());
        Assertions.assertTrue(layer.at("/result/integerWeights").isArray() && layer.at("/result/weightScales").isArray(),
                layer.toString().substring(0, 200));
        Files.delete(files.get(files.size() - 1));
        Run third = run("resume", 1);
        com.fasterxml.jackson.databind.JsonNode s3 = AdaRoundPassTest.runJson(third.result().output()).at("/passes/learn");
        assertEquals(1, s3.get("layers_learned").asInt());
        assertEquals(6, s3.get("layers_resumed").asInt());
        PartitionInvarianceTest.assertSameTable("learn: one layer learned again", first.table(), third.table());

        // another setting: another cache directory, everything learned
        Run other = run("resume", 1, "learn.iterations=60");
        com.fasterxml.jackson.databind.JsonNode s4 = AdaRoundPassTest.runJson(other.result().output()).at("/passes/learn");
        assertEquals(7, s4.get("layers_learned").asInt());
        Assertions.assertNotEquals(s2.get("cache").asText(), s4.get("cache").asText());
    }
}
