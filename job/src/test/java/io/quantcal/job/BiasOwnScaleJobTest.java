package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.OnnxModel;
import java.nio.file.Path;
import java.util.List;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * W16A16 on the bundled resnet_small: block2/conv2's bias needs more than int32 codes hold at s_x·s_w. The run says
 * so, the table's bias rows give the scale the QDQ model writes it at, and the QDQ model tracks FP32 (it lost 25 dB
 * of output SQNR when ONNX Runtime re-quantized that bias itself).
 */
class BiasOwnScaleJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void aBiasBeyondInt32AtItsScaleIsWrittenAtTheTablesOwnScaleAndTheModelTracksFp32() throws Exception {
        String output = tmp.resolve("w16").toString();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output,
                "quantization.activations.bits=16", "quantization.weights.bits=16", "calibration.limit=100",
                "evaluation.limit=200"), out);
        String said = console.toString(java.nio.charset.StandardCharsets.UTF_8);
        org.junit.jupiter.api.Assertions.assertTrue(said.contains("export: warning: node /block2/conv2/Conv runs in float: its bias"), said);
        JsonNode run = new ObjectMapper().readTree(Path.of(output, QuantcalJob.RUN_JSON).toFile());
        JsonNode own = run.path("passes").path("export").path("biases_at_own_scale");
        org.junit.jupiter.api.Assertions.assertFalse(own.isEmpty(), run.path("passes").path("export").toString());
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        for (JsonNode o : own) {
            String node = o.path("node").asText();
            org.junit.jupiter.api.Assertions.assertTrue(o.path("needs_int32_range_times").asDouble() > 1, o.toString());
            NodeProto conv = qdq.node(node);
            assertEquals(2, conv.getInputCount(), "the bias is added after " + node);
            NodeProto add = qdq.consumers(conv.getOutput(0)).get(0);
            assertEquals("Add", add.getOpType());
            float[] scales = qdq.initializerFloats(qdq.producer(add.getInput(1)).getInput(1));
            List<ScaleRow> rows = r.rows().stream().filter(x -> x.node().equals(node) && x.role().equals("bias")).toList();
            assertEquals(scales.length, rows.size());
            for (ScaleRow row : rows) assertEquals(scales[row.channel()], row.scale(), 0.0, node + " channel " + row.channel());
        }

        JsonNode ev = run.path("passes").path("evaluate");
        org.junit.jupiter.api.Assertions.assertTrue(ev.path("output_sqnr_db").asDouble() > 40, ev.toString());
        org.junit.jupiter.api.Assertions.assertTrue(ev.path("top1_agreement").asDouble() > 0.99, ev.toString());
    }
}
