package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.pipeline.AdaRoundPass;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.OnnxModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The adaround pass end to end on the bundled model at W4A8 per-channel, with test-sized settings
 * (16 samples, 400 iterations): lower reconstruction MSE than round-to-nearest on every layer, the codes in the
 * QDQ model equal the weights table, resume skips finished layers, and top-1 is not below round-to-nearest; with
 * quantized inputs (eq. 26) every layer beats round-to-nearest on the same inputs and the first wave equals fp mode;
 * at W3A8 top-1 beats round-to-nearest. That the codes and the table do not depend on the partitioning is
 * {@link PartitionInvarianceTest}'s.
 */
class AdaRoundPassTest extends SparkJobTest {

    static final String[] AR = {"quantization.weights.bits=4", "pipeline=[fold-bn,calibrate,adaround,export,evaluate]",
            "adaround.samples=16", "adaround.iterations=400", "output.overwrite=true", "adaround.inputs=fp"};

    @TempDir
    static Path tmp;

    QuantcalJob.Result first;

    synchronized QuantcalJob.Result first() {
        if (first == null) first = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("ar"), AR), out);
        return first;
    }

    String output(String name) {
        return tmp.resolve(name).toString();
    }

    /** A run's output (a file: URI) as a local path. */
    static Path local(String output) {
        return output.startsWith("file:") ? Path.of(java.net.URI.create(output)) : Path.of(output);
    }

    static JsonNode runJson(String output) throws Exception {
        return new ObjectMapper().readTree(local(output).resolve(QuantcalJob.RUN_JSON).toFile());
    }

    Map<String, List<Integer>> weightsTable(String output) {
        Map<String, List<Integer>> m = new LinkedHashMap<>();
        for (Row r : spark().read().parquet(output + "/" + AdaRoundPass.WEIGHTS_TABLE).collectAsList()) {
            m.put(r.getString(0), r.getList(2));
        }
        return m;
    }

    @Test
    void everyLayerReconstructsBetterThanRoundToNearestAndTheQdqModelHoldsTheTableCodes() throws Exception {
        QuantcalJob.Result r = first();
        JsonNode layers = runJson(r.output()).at("/passes/adaround/layers");
        assertEquals(7, layers.size());
        for (var it = layers.fields(); it.hasNext(); ) {
            var e = it.next();
            double rtn = e.getValue().get("mse_round_to_nearest").asDouble();
            double ar = e.getValue().get("mse_adaround").asDouble();
            Assertions.assertTrue(ar < rtn, e.getKey() + ": adaround mse " + ar + " < round-to-nearest " + rtn);
        }
        // work: per iteration a forward and a gradient gemm over a batch of min(2048, columns) columns, 2·2·K·D·B
        // FLOPs (K outputs of D products each), plus the two scoring passes over all columns, 2·2·K·D·columns
        OnnxModel fp = OnnxModel.load(Path.of(RESNET));
        double total = 0;
        for (var n : fp.quantizableNodes()) {
            JsonNode l = layers.get(n.name());
            long[] w = n.weightShape();
            long k = n.opType().equals("Conv") ? w[0] : n.transB() ? w[0] : w[1];
            long d = n.opType().equals("Conv") ? w[1] * w[2] * w[3] : n.transB() ? w[1] : w[0];
            long columns = l.get("columns").asLong();
            double expected = (4.0 * k * d * Math.min(2048, columns) * 400 + 4.0 * k * d * columns) / 1e9;
            assertEquals(expected, l.get("work_gflop").asDouble(), 1e-9 * expected, n.name());
            double ms = l.get("ms").asDouble(), rate = l.get("gflop_per_s").asDouble(); // ms is rounded down
            Assertions.assertTrue(rate <= expected / (ms / 1e3) && rate >= expected / ((ms + 1) / 1e3),
                    n.name() + ": " + rate + " GFLOP/s for " + expected + " GFLOP in " + ms + " ms");
            total += expected;
        }
        assertEquals(total, runJson(r.output()).at("/passes/adaround/work_gflop").asDouble(), 1e-9 * total);
        for (ScaleRow w : r.rows().stream().filter(x -> x.role().equals("weight")).toList()) {
            assertEquals("adaround", w.method(), w.tensor());
            assertEquals("mse", w.metric(), w.tensor());
            Assertions.assertTrue(w.metricValue() < w.metricBaseline(), w.tensor());
        }
        Map<String, List<Integer>> table = weightsTable(r.output());
        assertEquals(7, table.size());
        OnnxModel qdq = OnnxModel.load(local(r.output()).resolve("model_qdq.onnx"));
        for (var e : table.entrySet()) {
            int[] want = e.getValue().stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(want, JobFixtures.weightCodes(qdq, e.getKey() + "_quantized"), e.getKey());
        }
    }

    @Test
    void resumeSkipsFinishedLayersAndGivesTheSameTable() throws Exception {
        QuantcalJob.Result r = first();
        Map<String, List<Integer>> table = weightsTable(r.output());
        JsonNode s1 = runJson(r.output()).at("/passes/adaround");

        // same config, same output path: every layer comes from the cache
        QuantcalJob.Result again = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("ar"), AR), out);
        JsonNode s2 = runJson(again.output()).at("/passes/adaround");
        assertEquals(0, s2.get("layers_optimized").asInt());
        assertEquals(7, s2.get("layers_resumed").asInt());
        assertEquals(table, weightsTable(again.output()));
        assertEquals(s1.get("layers").toString().replaceAll("\"resumed\":false", "\"resumed\":true"),
                s2.get("layers").toString());

        // a killed run: one layer's result missing, only that layer runs again, same table
        String cache = s2.get("cache").asText();
        List<Path> files;
        try (Stream<Path> l = Files.list(local(cache))) {
            files = new ArrayList<>(l.filter(p -> p.toString().endsWith(".layer.json")).sorted().toList());
        }
        assertEquals(7, files.size());
        Files.delete(files.get(files.size() - 1));
        QuantcalJob.Result third = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("ar"), AR), out);
        JsonNode s3 = runJson(third.output()).at("/passes/adaround");
        assertEquals(1, s3.get("layers_optimized").asInt());
        assertEquals(6, s3.get("layers_resumed").asInt());
        assertEquals(table, weightsTable(third.output()));

        // resume = false recomputes (and a different setting gets a different cache directory)
        QuantcalConfig other = JobFixtures.config(RESNET, CALIB, output("ar"), JobFixtures.concat(AR, "adaround.iterations=50"));
        JsonNode s4 = runJson(QuantcalJob.run(spark(), other, out).output()).at("/passes/adaround");
        assertEquals(7, s4.get("layers_optimized").asInt());
        Assertions.assertNotEquals(cache, s4.get("cache").asText());
    }

    /** The wave of each layer, from run.json's passes.adaround.layers. */
    static Map<String, Integer> waves(JsonNode layers) {
        Map<String, Integer> m = new LinkedHashMap<>();
        for (var it = layers.fields(); it.hasNext(); ) {
            var e = it.next();
            m.put(e.getKey(), e.getValue().get("wave").asInt());
        }
        return m;
    }

    @Test
    void quantizedInputsBeatRoundToNearestOnTheSameInputsAndTheFirstWaveMatchesFpInputs() throws Exception {
        QuantcalJob.Result fp = first();
        QuantcalJob.Result q = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("arq"),
                JobFixtures.concat(AR, "adaround.inputs=quantized")), out);
        JsonNode sq = runJson(q.output()).at("/passes/adaround");
        JsonNode sf = runJson(fp.output()).at("/passes/adaround");
        assertEquals("quantized", sq.get("inputs").asText());
        // every wave closed its partial model's and the FP model's capture sessions; a task held both at once
        assertEquals(0, io.quantcal.kernels.runtime.SessionCache.size(), "sessions left in the cache after the run");
        assertEquals(2, runJson(q.output()).at("/onnx_sessions/peak_per_pass/adaround").asInt());
        assertEquals("fp", sf.get("inputs").asText());
        Assertions.assertNotEquals(sf.get("cache").asText().replaceAll(".*/", ""), sq.get("cache").asText().replaceAll(".*/", ""),
                "the mode is part of the cache hash");
        JsonNode lq = sq.get("layers"), lf = sf.get("layers");
        assertEquals(7, lq.size());
        Map<String, Integer> wave = waves(lq);
        // the cluster estimate from the layers' task times: one executor does them all, enough do the waves' longest
        JsonNode est = sq.get("cluster_estimate");
        Map<Integer, Long> longest = new java.util.TreeMap<>();
        long sum = 0;
        for (var it = lq.fields(); it.hasNext(); ) {
            var e = it.next();
            long ms = e.getValue().get("ms").asLong();
            sum += ms;
            longest.merge(e.getValue().get("wave").asInt(), ms, Math::max);
        }
        long critical = longest.values().stream().mapToLong(Long::longValue).sum();
        assertEquals(sq.get("waves").asInt(), est.get("waves").asInt());
        assertEquals(sum / 1000.0, est.get("task_s").asDouble(), 0.008, "the layers' ms, each truncated");
        assertEquals(critical / 1000.0, est.get("critical_path_s").asDouble(), 0.008);
        assertEquals(est.get("task_s").asDouble(), est.at("/executors_s/1/0").asDouble());
        assertEquals(est.get("task_s").asDouble(), est.at("/executors_s/1/1").asDouble());
        assertEquals(est.get("critical_path_s").asDouble(), est.at("/executors_s/64/0").asDouble(), 0.002,
                "64 executors: at least the longest layer of each wave (7 layers)");
        Assertions.assertTrue(sq.get("waves").asInt() > 1, "resnet_small has layers in more than one wave: " + wave);
        Map<String, List<Integer>> tq = weightsTable(q.output()), tf = weightsTable(fp.output());
        OnnxModel model = OnnxModel.load(Path.of(RESNET));
        int later = 0;
        for (var it = lq.fields(); it.hasNext(); ) {
            var e = it.next();
            String layer = e.getKey();
            // both against the FP target, both on the same quantized inputs
            double rtn = e.getValue().get("mse_round_to_nearest").asDouble();
            double ar = e.getValue().get("mse_adaround").asDouble();
            Assertions.assertTrue(ar < rtn, layer + ": adaround mse " + ar + " < round-to-nearest " + rtn + " (quantized inputs)");
            String weight = model.quantizableNodes().stream().filter(n -> n.name().equals(layer)).findFirst().orElseThrow().weight();
            if (wave.get(layer) == 0) {
                // FP inputs in both modes: exactly the same result
                assertEquals(tf.get(weight), tq.get(weight), layer + " (wave 0)");
                assertEquals(lf.get(layer).get("mse_adaround").asDouble(), ar, 0.0, layer);
                assertEquals(lf.get(layer).get("mse_round_to_nearest").asDouble(), rtn, 0.0, layer);
            } else {
                // quantized inputs: round-to-nearest's error against the FP target is larger than on FP inputs
                later++;
                Assertions.assertTrue(rtn > lf.get(layer).get("mse_round_to_nearest").asDouble(),
                        layer + ": round-to-nearest mse on quantized inputs " + rtn + " > on FP inputs "
                                + lf.get(layer).get("mse_round_to_nearest").asDouble());
            }
        }
        Assertions.assertTrue(later > 0);
        System.out.printf("W4A8 quantized inputs top-1: adaround %.4f (fp inputs %.4f)%n",
                runJson(q.output()).at("/passes/evaluate/top1_quantized").asDouble(),
                runJson(fp.output()).at("/passes/evaluate/top1_quantized").asDouble());
    }

    @Test
    void w3a8EveryLayerReconstructsBetterAndTop1BeatsRoundToNearestWithTheSameScales() throws Exception {
        String[] w3 = {"quantization.weights.bits=3", "pipeline=[fold-bn,calibrate,adaround,export,evaluate]",
                "adaround.samples=16", "adaround.iterations=400", "output.overwrite=true", "adaround.inputs=fp"};
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("ar3"), w3), out);
        QuantcalJob.Result rtn = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("rtn3"),
                "quantization.weights.bits=3", "pipeline=[fold-bn,calibrate,export,evaluate]"), out);
        JsonNode layers = runJson(r.output()).at("/passes/adaround/layers");
        assertEquals(7, layers.size());
        for (var it = layers.fields(); it.hasNext(); ) {
            var e = it.next();
            double m0 = e.getValue().get("mse_round_to_nearest").asDouble(), m1 = e.getValue().get("mse_adaround").asDouble();
            Assertions.assertTrue(m1 < m0, e.getKey() + ": W3 adaround mse " + m1 + " < round-to-nearest " + m0);
        }
        List<ScaleRow> a = r.rows().stream().filter(x -> x.role().equals("weight")).toList();
        List<ScaleRow> b = rtn.rows().stream().filter(x -> x.role().equals("weight")).toList();
        assertEquals(b.size(), a.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(3, a.get(i).bits(), a.get(i).tensor());
            assertEquals(b.get(i).scale(), a.get(i).scale(), 0.0, a.get(i).tensor());
        }
        double ar = runJson(r.output()).at("/passes/evaluate/top1_quantized").asDouble();
        double nearest = runJson(rtn.output()).at("/passes/evaluate/top1_quantized").asDouble();
        System.out.printf("W3A8 top-1: round-to-nearest %.4f, adaround %.4f%n", nearest, ar);
        Assertions.assertTrue(ar > nearest, "W3A8 adaround top-1 " + ar + " > round-to-nearest " + nearest);
    }

    @Test
    void top1AtW4A8IsNotBelowRoundToNearestWithTheSameScales() throws Exception {
        QuantcalJob.Result r = first();
        QuantcalJob.Result rtn = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output("rtn"),
                "quantization.weights.bits=4", "pipeline=[fold-bn,calibrate,export,evaluate]"), out);
        double ar = runJson(r.output()).at("/passes/evaluate/top1_quantized").asDouble();
        double nearest = runJson(rtn.output()).at("/passes/evaluate/top1_quantized").asDouble();
        System.out.printf("W4A8 top-1: round-to-nearest %.4f, adaround %.4f%n", nearest, ar);
        // same weight scales: the calibrate rows of both runs agree
        List<ScaleRow> a = r.rows().stream().filter(x -> x.role().equals("weight")).toList();
        List<ScaleRow> b = rtn.rows().stream().filter(x -> x.role().equals("weight")).toList();
        assertEquals(b.size(), a.size());
        for (int i = 0; i < a.size(); i++) assertEquals(b.get(i).scale(), a.get(i).scale(), 0.0, a.get(i).tensor());
        Assertions.assertTrue(ar >= nearest, "adaround top-1 " + ar + " >= round-to-nearest " + nearest);
    }
}
