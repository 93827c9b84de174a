package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image input without a batch dimension ([C, H, W], as torch.onnx exports torchvision's detection models, which
 * batch the image inside) is fed one image per run: the model gets the table and the evaluation of the same layers
 * reading a batched input. Before, it was refused ("has shape [1, 28, 28] (rank 3), preprocess gives rank 4").
 */
class UnbatchedInputJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    private QuantcalJob.Result run(boolean unbatched) throws Exception {
        Path file = tmp.resolve(unbatched + ".onnx");
        Files.write(file, TestModels.withoutBatchDimension(unbatched).toByteArray());
        return QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB, tmp.resolve("o" + unbatched)
                        .toString(), "calibration.limit=40", "evaluation.limit=40", "pipeline=[calibrate,export,evaluate]"),
                new PrintStream(new ByteArrayOutputStream()));
    }

    @Test
    void oneImagePerRunGivesTheTableOfTheBatchedModel() throws Exception {
        QuantcalJob.Result a = run(true), b = run(false);
        List<ScaleRow> ra = a.rows().stream().filter(r -> !r.tensor().equals("x") && !r.tensor().equals("xb")).toList();
        List<ScaleRow> rb = b.rows().stream().filter(r -> !r.tensor().equals("x")).toList();
        assertEquals(rb.size(), ra.size());
        for (int i = 0; i < ra.size(); i++) {
            assertEquals(rb.get(i).tensor() + "/" + rb.get(i).channel(), ra.get(i).tensor() + "/" + ra.get(i).channel());
            assertEquals(rb.get(i).scale(), ra.get(i).scale(), 0.0, ra.get(i).tensor());
            assertEquals(rb.get(i).zeroPoint(), ra.get(i).zeroPoint(), ra.get(i).tensor());
        }
        // the Conv's input: the image, 'xb' behind the Unsqueeze, 'x' in the batched model
        ScaleRow in = a.rows().stream().filter(r -> r.tensor().equals("xb")).findFirst().orElseThrow();
        ScaleRow inB = b.rows().stream().filter(r -> r.tensor().equals("x")).findFirst().orElseThrow();
        assertEquals(inB.scale(), in.scale(), 0.0);
        assertEquals(inB.zeroPoint(), in.zeroPoint());
        JsonNode ja = json(a), jb = json(b);
        assertEquals("[\"x float32 [1, 28, 28] (no batch dimension)\"]", ja.get("passes").get("calibrate").get("inputs").toString());
        assertEquals(1, ja.get("passes").get("calibrate").get("batch_per_run").asInt());
        JsonNode ea = ja.get("passes").get("evaluate"), eb = jb.get("passes").get("evaluate");
        assertEquals(40, ea.get("samples").asInt());
        assertEquals(eb.get("top1_agreement").asDouble(), ea.get("top1_agreement").asDouble(), 0.0);
        assertEquals(eb.get("top1_quantized").asDouble(), ea.get("top1_quantized").asDouble(), 0.0);
        assertEquals(eb.get("output_sqnr_db").asDouble(), ea.get("output_sqnr_db").asDouble(), 1e-9);
    }

    private static JsonNode json(QuantcalJob.Result r) throws Exception {
        return new ObjectMapper().readTree(AdaRoundPassTest.local(r.output()).resolve("run.json").toFile());
    }
}
