package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.EXAMPLE;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-free quantization on the unbalanced MobileNet fixture (depthwise channels rescaled by factors in
 * [1/64, 4], the next layer's inputs by the inverse: same FP32 function), 8-bit per-tensor weights.
 */
class DfqPipelineTest extends SparkJobTest {

    static final String UNBALANCED = EXAMPLE.resolve("models/mobilenet_small_unbalanced.onnx").toString();

    @TempDir
    Path tmp;

    JsonNode run(String name, String pipeline, String... more) throws Exception {
        String output = tmp.resolve(name).toString();
        QuantcalJob.run(spark(), JobFixtures.config(UNBALANCED, CALIB, output, JobFixtures.concat(more,
                "pipeline=" + pipeline, "quantization.weights.granularity=per-tensor")), out);
        return new ObjectMapper().readTree(Path.of(output, "run.json").toFile()).get("passes");
    }

    @Test
    void equalizationAndBiasCorrectionRecoverPerTensorAccuracy() throws Exception {
        JsonNode plain = run("plain", "[fold-bn, calibrate, evaluate]").get("evaluate");
        double fp = plain.get("top1_fp32").asDouble();
        assertEquals(0.866, fp, 1e-9, "FP32 top-1 of the fixture on the 1000 eval images");
        Assertions.assertTrue(plain.get("top1_quantized").asDouble() < fp - 0.30,
                "per-tensor int8 collapses without DFQ: " + plain.get("top1_quantized"));

        JsonNode dfq = run("dfq", "[fold-bn, equalize, calibrate, bias-correct, evaluate]");
        JsonNode ev = dfq.get("evaluate");
        Assertions.assertTrue(Math.abs(ev.get("top1_fp32").asDouble() - fp) <= 0.01,
                "ReLU6 treated as ReLU changes FP32 only slightly: " + ev.get("top1_fp32"));
        Assertions.assertTrue(ev.get("top1_quantized").asDouble() >= fp - 0.01,
                "with equalize + bias-correct within 1 point of FP: " + ev.get("top1_quantized") + " vs " + fp);
        JsonNode eq = dfq.get("equalize");
        assertEquals(6, eq.get("pairs").size());
        Assertions.assertTrue(eq.get("relu6_treated_as_relu").asBoolean());
        Assertions.assertTrue(Files.exists(tmp.resolve("dfq").resolve("model_fp32_equalized.onnx")));
        assertEquals("empirical", dfq.get("bias-correct").get("variant").asText());
        assertEquals(7, dfq.get("bias-correct").get("corrections").size());
    }

    @Test
    void exactEqualizationOnlyKeepsTheFp32FunctionAndStillRecovers() throws Exception {
        JsonNode ev = run("relu", "[fold-bn, equalize, calibrate, evaluate]", "dfq.relu6-as-relu=false").get("evaluate");
        assertEquals(0.866, ev.get("top1_fp32").asDouble(), 1e-9, "ReLU pairs only: FP32 function unchanged");
        Assertions.assertTrue(ev.get("top1_quantized").asDouble() > 0.80, "quantized: " + ev.get("top1_quantized"));
    }
}
