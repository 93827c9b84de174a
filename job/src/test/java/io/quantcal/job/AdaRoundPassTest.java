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
 * QDQ model equal the weights table, resume skips finished layers, and top-1 is not below round-to-nearest.
 */
class AdaRoundPassTest extends SparkJobTest {

    static final String[] AR = {"quantization.weights.bits=4", "pipeline=[fold-bn,calibrate,adaround,export,evaluate]",
            "adaround.samples=16", "adaround.iterations=400", "output.overwrite=true"};

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
            assertArrayEquals(want, qdq.initializerInts(e.getKey() + "_quantized"), e.getKey());
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
        try (Stream<Path> l = Files.list(Path.of(cache))) {
            files = new ArrayList<>(l.filter(p -> p.toString().endsWith(".bin")).sorted().toList());
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
