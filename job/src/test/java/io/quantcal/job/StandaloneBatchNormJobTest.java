package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.Graphs;
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
 * fold-bn in a whole run: DenseNet's layer, a BatchNormalization after a Concat that no Conv absorbs, becomes a
 * depthwise 1×1 Conv with per-channel weights (its weight rows in the table, the QDQ model without a float BN) and stays
 * a float BN with per-tensor weights, named in run.json with the reason.
 */
class StandaloneBatchNormJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /** x [N, 1, 28, 28] → conv_a (4) → relu; Concat(x, a) → bn (5) → relu → conv_b (3×3, 8) → GAP → flatten → fc. */
    static OnnxModel denseLayer() {
        TestModels.Builder b = new TestModels.Builder(23);
        b.conv("conv_a", "x", "c", 1, 4, 3, 1, 1, 1, true).relu("relu_a", "c", "a");
        b.node(Graphs.node("Concat", "concat", List.of("x", "a"), List.of("cat"), Map.of("axis", 1L)));
        b.batchNorm("bn", "cat", "n", 5).relu("relu", "n", "r");
        b.conv("conv_b", "r", "cb", 5, 8, 3, 1, 1, 1, true).relu("relu_b", "cb", "rb");
        b.classifier("rb", 8, 10);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    @SuppressWarnings("unchecked")
    @Test
    void perChannelRunsItAsADepthwiseConvAndPerTensorKeepsItWithTheReason() throws Exception {
        Path file = tmp.resolve("dense.onnx");
        Files.write(file, denseLayer().toByteArray());
        PrintStream out = new PrintStream(new ByteArrayOutputStream());
        String[] base = {"calibration.limit=32", "evaluation.limit=64", "pipeline=[fold-bn,calibrate,export,evaluate]"};

        QuantcalJob.Result pc = QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                tmp.resolve("pc").toString(), base), out);
        Map<String, Object> fold = (Map<String, Object>) ((Map<String, Object>) pc.summary().get("passes")).get("fold-bn");
        assertEquals(List.of("bn"), fold.get("as_depthwise_conv"));
        assertEquals(Map.of(), fold.get("kept"));
        // the node the user's graph calls bn has weight rows, one per channel, each the top of its grid: exact
        List<ScaleRow> w = pc.rows().stream().filter(r -> r.node().equals("bn") && r.role().equals("weight")).toList();
        assertEquals(5, w.size(), pc.rows().stream().filter(r -> r.node().equals("bn")).toList().toString());
        OnnxModel qdq = OnnxModel.load(tmp.resolve("pc").resolve("model_qdq.onnx"));
        assertEquals(0, qdq.nodes().stream().filter(n -> n.getOpType().equals("BatchNormalization")).count());
        assertEquals("Conv", qdq.node("bn").getOpType());
        double sqnrPc = ((Number) ((Map<String, Object>) ((Map<String, Object>) pc.summary().get("passes")).get("evaluate"))
                .get("output_sqnr_db")).doubleValue();

        String[] pt = java.util.Arrays.copyOf(base, base.length + 1);
        pt[base.length] = "quantization.weights.granularity=per-tensor";
        QuantcalJob.Result tensor = QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                tmp.resolve("pt").toString(), pt), out);
        fold = (Map<String, Object>) ((Map<String, Object>) tensor.summary().get("passes")).get("fold-bn");
        assertEquals(List.of(), fold.get("as_depthwise_conv"));
        assertEquals(Map.of("bn", "no Conv before it to fold into; per-tensor weights keep it in float"), fold.get("kept"));
        org.junit.jupiter.api.Assertions.assertTrue(tensor.rows().stream().noneMatch(r -> r.node().equals("bn")));
        OnnxModel qdqPt = OnnxModel.load(tmp.resolve("pt").resolve("model_qdq.onnx"));
        assertEquals(1, qdqPt.nodes().stream().filter(n -> n.getOpType().equals("BatchNormalization")).count());

        // the depthwise Conv costs no accuracy: the QDQ model tracks FP32 as closely as with the BN in float
        // (per-channel weights: every other layer's weights are finer too)
        double sqnrPt = ((Number) ((Map<String, Object>) ((Map<String, Object>) tensor.summary().get("passes")).get("evaluate"))
                .get("output_sqnr_db")).doubleValue();
        org.junit.jupiter.api.Assertions.assertTrue(sqnrPc > 20 && sqnrPc > sqnrPt - 1, "output SQNR per-channel " + sqnrPc + " dB, per-tensor " + sqnrPt);
    }
}
