package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.Coverage;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A CRNN (Conv → LSTM over the columns → MatMul, sequence first as torch.onnx writes nn.LSTM) through the whole job:
 * the LSTM, the layer with most weights, is listed FP32 on the console, in run.json and in the report, not left out
 * silently; the Conv and MatMul around it are quantized and the QDQ model tracks FP32 in ONNX Runtime.
 */
class RecurrentModelJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void theLstmIsListedFp32AndTheRestIsQuantized() throws Exception {
        Path file = tmp.resolve("crnn.onnx");
        Files.write(file, TestModels.recurrent("LSTM").toByteArray());
        String output = tmp.resolve("o").toString();
        String text = JobFixtures.runOnExample(spark(), file, output);
        Assertions.assertTrue(text.contains("coverage: 2 of 2 Conv/ConvTranspose/Gemm/MatMul nodes quantized\n"), text);
        Assertions.assertTrue(text.contains("coverage: 1 other layer with weights (LSTM) stays FP32\n  FP32 LSTM rnn: "
                + Coverage.RECURRENT + "\n"), text);
        JsonNode cov = new ObjectMapper().readTree(Path.of(output, "run.json").toFile()).get("coverage");
        JsonNode others = cov.get("other_layers_fp32");
        assertEquals(1, others.size(), cov.toString());
        assertEquals("rnn", others.get(0).get("node").asText());
        assertEquals("LSTM", others.get(0).get("op_type").asText());
        assertEquals(Coverage.RECURRENT, others.get(0).get("reason").asText());
        String report = Files.readString(Path.of(output, "report.html"));
        Assertions.assertTrue(report.contains("1 other layer with weights (LSTM) stays FP32."), "report names the LSTM");
        Assertions.assertTrue(report.contains("<td>rnn</td><td>LSTM</td><td>FP32</td>"), "report's coverage row");
        // the QDQ model keeps the LSTM in float, with its float weights, and quantizes the Conv and the MatMul
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        assertEquals("LSTM", qdq.node("rnn").getOpType());
        Assertions.assertTrue(qdq.isInitializer("rnn.W") && qdq.initializer("rnn.W").getDataType() == 1, "float W");
        JsonNode eval = new ObjectMapper().readTree(Path.of(output, "run.json").toFile()).get("passes").get("evaluate");
        double sqnr = eval.get("output_sqnr_db").asDouble();
        System.out.printf("RecurrentModelJobTest: output SQNR %.2f dB%n", sqnr);
        // measured 33.49 dB (the LSTM amplifies the Conv's and its input's rounding; the MatMul's output is the logits)
        Assertions.assertTrue(sqnr > 28, "output SQNR " + sqnr + " dB");
    }

    @Test
    void aModelWhoseOnlyLayerIsAGruIsRefusedNamingIt() throws Exception {
        // x [N, 1, 28, 28] → Reshape [N, 28, 28] → Transpose → [28, N, 28] → GRU (hidden 4) → y: no Conv/Gemm/MatMul
        TestModels.Builder b = new TestModels.Builder(2);
        b.randomInit("W", 0.3, 1, 12, 28);
        b.randomInit("R", 0.3, 1, 12, 4);
        b.node(Graphs.node("Constant", "shape", List.of(), List.of("shape"),
                Map.of("value", Graphs.int64Tensor("shape", new long[] {0, 28, 28}, 3))));
        b.node(Graphs.node("Reshape", "rows", List.of("x", "shape"), List.of("rows")));
        b.node(Graphs.node("Transpose", "tnf", List.of("rows"), List.of("seq"), Map.of("perm", new long[] {1, 0, 2})));
        b.node(Graphs.node("GRU", "gru", List.of("seq", "W", "R"), List.of("y"), Map.of("hidden_size", 4L)));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("y", 28, 1, -1, 4)));
        Path file = tmp.resolve("gru.onnx");
        Files.write(file, m.toByteArray());
        String output = tmp.resolve("gru-out").toString();
        ModelException e = assertThrows(ModelException.class, () -> QuantcalJob.run(spark(), JobFixtures.config(
                file.toString(), JobFixtures.CALIB, output, "calibration.limit=8", "pipeline=[calibrate,export]"),
                new PrintStream(new ByteArrayOutputStream())));
        Assertions.assertTrue(!Files.exists(Path.of(output)), "nothing written");
        Assertions.assertTrue(e.getMessage().endsWith("has no quantizable node (Conv, Gemm, or MatMul with a constant weight)"
                + " in its main graph; its GRU node 'gru' stays FP32: " + Coverage.RECURRENT), e.getMessage());
    }
}
