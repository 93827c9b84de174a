package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.EXAMPLE;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The AdaRound resume cache never returns stale layers: its key covers the model's content and the samples' content,
 * not only their paths, so the same paths with other bytes recompute every layer and say which cache was ignored and
 * why; the same content again resumes.
 */
class ResumeCacheTest extends SparkJobTest {

    @TempDir
    Path tmp;

    static final String[] AR = {"quantization.weights.bits=4", "pipeline=[calibrate,adaround]", "adaround.samples=6",
            "adaround.iterations=30", "adaround.inputs=fp", "output.overwrite=true", "calibration.limit=6"};

    JsonNode run(Path model, Path calib) throws Exception {
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(model.toString(), calib.toString(),
                tmp.resolve("out").toString(), AR), out);
        return new ObjectMapper().readTree(AdaRoundPassTest.local(r.output()).resolve(QuantcalJob.RUN_JSON).toFile())
                .at("/passes/adaround");
    }

    @Test
    void otherModelOrSampleContentBehindTheSamePathsIsNeverResumed() throws Exception {
        Path model = Files.copy(EXAMPLE.resolve("models/mobilenet_small.onnx"), tmp.resolve("model.onnx"));
        Path calib = Files.createDirectories(tmp.resolve("calib/0-tshirt"));
        List<Path> images;
        try (Stream<Path> s = Files.list(Path.of(CALIB, "0-tshirt")).sorted()) {
            images = s.limit(7).toList();
        }
        for (Path p : images.subList(0, 6)) Files.copy(p, calib.resolve(p.getFileName()));

        JsonNode a = run(model, calib.getParent());
        int layers = a.get("layers").size();
        assertEquals(layers, a.get("layers_optimized").asInt());
        assertEquals(0, a.get("caches_ignored").size());
        assertEquals(layers, run(model, calib.getParent()).get("layers_resumed").asInt(), "same content: resumed");

        // one image replaced by another under the same name: other samples, every layer again
        Files.copy(images.get(6), calib.resolve(images.get(2).getFileName()), StandardCopyOption.REPLACE_EXISTING);
        JsonNode b = run(model, calib.getParent());
        assertEquals(0, b.get("layers_resumed").asInt());
        assertEquals(layers, b.get("layers_optimized").asInt());
        assertEquals(1, b.get("caches_ignored").size());
        String why = b.get("caches_ignored").get(0).asText();
        Assertions.assertTrue(why.endsWith("ignored: it was made for other inputs (differs in samples)"), why);

        // other weights in the same model file: every layer again, the two older caches ignored
        Files.copy(EXAMPLE.resolve("models/mobilenet_small_unbalanced.onnx"), model, StandardCopyOption.REPLACE_EXISTING);
        JsonNode c = run(model, calib.getParent());
        assertEquals(0, c.get("layers_resumed").asInt());
        assertEquals(2, c.get("caches_ignored").size());
        for (JsonNode n : c.get("caches_ignored")) {
            Assertions.assertTrue(n.asText().contains("model_sha256"), n.asText());
        }
        String console = this.console.toString(java.nio.charset.StandardCharsets.UTF_8);
        Assertions.assertTrue(console.contains("adaround: cache "), "ignored caches are reported on the console");
    }

    /** A relative output path is resolved once on the driver: the cache every executor writes to is the same absolute path. */
    @Test
    void aRelativeOutputGivesAnAbsoluteCachePath() throws Exception {
        String rel = "target/resume-rel-" + Long.toHexString(System.nanoTime());
        Path model = Files.copy(EXAMPLE.resolve("models/mobilenet_small.onnx"), tmp.resolve("m.onnx"));
        try {
            QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(model.toString(), CALIB, rel, AR), out);
            JsonNode s = new ObjectMapper().readTree(AdaRoundPassTest.local(r.output()).resolve(QuantcalJob.RUN_JSON).toFile())
                    .at("/passes/adaround");
            String expected = "file:" + Path.of(rel).toAbsolutePath() + ".adaround-cache/";
            Assertions.assertTrue(s.get("cache").asText().startsWith(expected), s.get("cache").asText() + " vs " + expected);
            Assertions.assertTrue(r.output().startsWith("file:/"), r.output());
        } finally {
            org.apache.commons.io.FileUtils.deleteDirectory(Path.of(rel).toFile());
            org.apache.commons.io.FileUtils.deleteDirectory(Path.of(rel + ".adaround-cache").toFile());
        }
    }
}
