package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model whose first output's shape depends on the data (a detector's boxes after NonMaxSuppression; here the
 * logits above a threshold, through NonZero): evaluate compares the first output it can, names the ones it cannot,
 * and with none comparable still measures every layer. Before, the first output was compared value by value: a
 * misaligned SQNR (a probe model of this shape: 11.4 dB where its logits measure 45.1 dB) or ONNX Runtime's error on a
 * pinned output of another size.
 */
class DataDependentOutputsJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    private JsonNode run(String name, StringBuilder console, String... outputs) throws Exception {
        Path file = tmp.resolve(name + ".onnx");
        Files.write(file, TestModels.dataDependentOutputs(outputs).toByteArray());
        String output = tmp.resolve(name).toString();
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB, output, "calibration.limit=64",
                "evaluation.limit=64", "calibration.batch-size=8", "pipeline=[calibrate,export,evaluate]"),
                new PrintStream(text, true, StandardCharsets.UTF_8));
        console.append(text.toString(StandardCharsets.UTF_8));
        return new ObjectMapper().readTree(Path.of(output, "run.json").toFile()).get("passes").get("evaluate");
    }

    @Test
    void theLogitsAreComparedWhateverOutputComesFirst() throws Exception {
        StringBuilder first = new StringBuilder(), reference = new StringBuilder();
        JsonNode a = run("kept-first", first, "kept", "labels", "logits", "probs");
        JsonNode b = run("logits-only", reference, "logits");
        Assertions.assertTrue(first.toString().contains("evaluate: output kept not compared: its shape depends on the data"
                + " (NonZero node 'nz'): "), first.toString());
        Assertions.assertTrue(first.toString().contains("evaluate: output labels not compared: an int64 tensor, not float32"
                + " values"), first.toString());
        assertEquals("logits", a.get("output").asText());
        // the same logits, the same comparison as the model that has no other output
        assertEquals(b.get("output_sqnr_db").asDouble(), a.get("output_sqnr_db").asDouble(), 1e-9);
        assertEquals(b.get("top1_agreement").asDouble(), a.get("top1_agreement").asDouble(), 1e-12);
        System.out.printf("DataDependentOutputsJobTest: logits SQNR %.2f dB%n", a.get("output_sqnr_db").asDouble());
        Assertions.assertTrue(a.get("output_sqnr_db").asDouble() > 30, a.toString());
        assertEquals(2, a.get("outputs_not_compared").size());
        // the other float output is compared over the whole data too
        double probs = a.get("other_outputs").get("probs").get("sqnr_db").asDouble();
        System.out.printf("DataDependentOutputsJobTest: probs SQNR %.2f dB%n", probs);
        Assertions.assertTrue(probs > 25, "probs SQNR " + probs);
        Assertions.assertTrue(first.toString().contains("evaluate: output probs: SQNR "), first.toString());
        // the report says the same
        String report = Files.readString(tmp.resolve("kept-first").resolve("report.html"));
        Assertions.assertTrue(report.contains("<tr><th>output logits SQNR</th>"), "the compared output's row");
        Assertions.assertTrue(report.contains("<tr><th>output probs SQNR</th>"), "the other output's row");
        Assertions.assertTrue(report.contains("<tr><th>output kept</th><td>not compared: its shape depends on the data"),
                "the data-dependent output's row");
    }

    @Test
    void withNoComparableOutputTheLayersAreStillMeasured() throws Exception {
        StringBuilder console = new StringBuilder(), reference = new StringBuilder();
        JsonNode a = run("kept-only", console, "kept", "labels");
        JsonNode b = run("logits-ref", reference, "logits");
        Assertions.assertTrue(console.toString().contains("evaluate: 64 samples; no output compared (every output is"
                + " data-dependent or not float32: kept, labels)"), console.toString());
        assertEquals("n/a: every output is data-dependent or not float32: kept, labels", a.get("output").asText());
        Assertions.assertNull(a.get("output_sqnr_db"));
        // each layer's SQNR as in the model whose output is the logits
        for (String layer : new String[] {"conv1", "fc"}) {
            assertEquals(b.get("layer_sqnr_db").get(layer).asDouble(), a.get("layer_sqnr_db").get(layer).asDouble(), 1e-9, layer);
        }
    }

    @Test
    void aLayerAfterTheSelectionIsCalibratedAndItsSqnrIsNa() throws Exception {
        // "post" reads kept ([K, 1], K per batch): its input is captured whatever K is (calibrate), the table has its
        // rows, and evaluate, which cannot align two models' selections, says n/a for it and compares the rest
        StringBuilder console = new StringBuilder(), reference = new StringBuilder();
        JsonNode a = run("post", console, "logits", "post_out");
        JsonNode b = run("post-ref", reference, "logits");
        assertEquals("n/a: its output's shape depends on the data", a.get("layer_sqnr_db").get("post").asText());
        for (String layer : new String[] {"conv1", "fc"}) {
            assertEquals(b.get("layer_sqnr_db").get(layer).asDouble(), a.get("layer_sqnr_db").get(layer).asDouble(), 1e-9, layer);
        }
        assertEquals(b.get("output_sqnr_db").asDouble(), a.get("output_sqnr_db").asDouble(), 1e-9);
        var table = org.apache.spark.sql.SparkSession.active().read().parquet(tmp.resolve("post").resolve("scale_table").toString());
        Assertions.assertTrue(table.where("node = 'post' and role = 'weight'").count() == 4, "post's per-channel weight rows");
        Assertions.assertTrue(table.where("node = 'post' and role = 'activation' and tensor = 'kept2d'").count() == 1,
                "post's input row");
    }

    @Test
    void easyQuantAndAdaRoundTakeTheOtherLayersAndKeepTheOneAfterTheSelection() throws Exception {
        // before, its per-sample capture stopped the run: "tensor post_out [47, 4] has no axis of the batch size 8"
        Path file = tmp.resolve("post-eq.onnx");
        Files.write(file, TestModels.dataDependentOutputs("logits", "post_out").toByteArray());
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                tmp.resolve("post-eq").toString(), "calibration.limit=32", "evaluation.limit=32", "calibration.batch-size=8",
                "pipeline=[calibrate,easyquant,adaround,export,evaluate]", "adaround.samples=16", "adaround.iterations=20"),
                new PrintStream(text, true, StandardCharsets.UTF_8));
        String console = text.toString(StandardCharsets.UTF_8);
        Assertions.assertTrue(console.contains("easyquant: keeps post (its input's shape depends on the data (NonZero node"
                + " 'nz'), so its rows are not the samples' own) at the calibrated parameters"), console);
        // adaround says so too (it named the layers it solved, not the one it left at nearest rounding)
        Assertions.assertTrue(console.contains("adaround: keeps post (its input's shape depends on the data (NonZero node"
                + " 'nz'), so its rows are not the samples' own) rounded to nearest at the calibrated scales"), console);
        Assertions.assertTrue(r.rows().stream().anyMatch(x -> x.node().equals("conv1") && x.method().contains("easyquant")),
                "conv1 searched");
        Assertions.assertTrue(r.rows().stream().filter(x -> x.node().equals("post")).noneMatch(x -> x.method().contains("easyquant")),
                "post kept as calibrated");
    }
}
