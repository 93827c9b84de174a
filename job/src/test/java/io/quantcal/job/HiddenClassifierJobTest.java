package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.pipeline.EvaluatePass;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.job.table.ScaleTable;
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
 * A whole run on a network whose end is like MobileNetV3's: an activation after the last convolution (SiLU here), a
 * MaxPool, the global pool, then a hidden classifier layer (its output quantized) and the last one (its output the
 * graph's, in float). The
 * `ort` export writes the hidden one as a 1×1 Conv, so that ONNX Runtime runs the tail channels-last; the table, the
 * export and evaluate's per-layer comparison keep describing the same tensors.
 */
class HiddenClassifierJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /** x [N, 1, 28, 28] → conv1 (s2) → Relu → conv2 → SiLU → MaxPool 2 → GAP → Flatten → fc1 → Relu → fc2 → logits. */
    static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(23);
        b.conv("conv1", "x", "c1", 1, 8, 3, 1, 2, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", 8, 16, 3, 1, 1, 1, true);
        b.siluMaxPoolGap("c2", "g");
        b.node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc1", "f", "h", 16, 32, true, true).relu("relu_h", "h", "hr");
        b.gemm("fc2", "hr", "logits", 32, 10, true, true);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    @SuppressWarnings("unchecked")
    @Test
    void theHiddenClassifierIsExportedAsAConvAndEveryRowStillHasItsQuantizeLinear() throws Exception {
        Path file = tmp.resolve("head.onnx");
        Files.write(file, model().toByteArray());
        String output = tmp.resolve("o").toString();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB, output,
                "calibration.limit=64", "evaluation.limit=64", "pipeline=[calibrate,export,evaluate]",
                "quantization.weights.bits=7"), new PrintStream(new ByteArrayOutputStream()));
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        assertEquals("Conv", qdq.node("fc1").getOpType());
        assertEquals("Gemm", qdq.node("fc2").getOpType(), "the last layer writes the float graph output");
        // the table is the export: the Flatten's output (fc1's input row) still has its QuantizeLinear
        List<ScaleRow> rows = ScaleTable.read(spark(), output + "/" + QuantcalJob.SCALE_TABLE);
        ExportProfilesTest.assertModelIsTheTable(qdq, rows);
        // the table keeps the model's layers as they are: fc1 is a Gemm there
        assertEquals("Gemm", rows.stream().filter(x -> x.node().equals("fc1")).findFirst().orElseThrow().opType());
        // evaluate compares fc1's dequantized output (its codes flattened, then dequantized) with FP32's
        Map<String, Object> passes = (Map<String, Object>) r.summary().get("passes");
        Map<String, Object> eval = (Map<String, Object>) passes.get("evaluate");
        List<io.quantcal.kernels.onnx.QuantizableNode> nodes = model().quantizableNodes();
        EvaluatePass.LayerTensors pairs = EvaluatePass.layerTensors(qdq, nodes);
        int fc1 = nodes.stream().map(n -> n.name()).toList().indexOf("fc1");
        assertEquals("DequantizeLinear", qdq.producer(pairs.quant().get(fc1)).getOpType(), pairs.quant().get(fc1));
        double sqnr = ((Number) ((Map<String, Object>) eval.get("layer_sqnr_db")).get("fc1")).doubleValue();
        org.junit.jupiter.api.Assertions.assertTrue(sqnr > 20, "fc1's output SQNR " + sqnr + " dB");
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("optimized.onnx"));
        assertEquals(0L, ops.getOrDefault(":MaxPool", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault("com.microsoft:NhwcMaxPool", 0L), ops.toString());
    }
}
