package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.pipeline.BroadcastModel;
import io.quantcal.kernels.onnx.OnnxModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole job on a model handled as larger than one protobuf message (the threshold lowered by the system property
 * {@code quantcal.large-model-bytes}, so that the bundled network takes that path): read from an ONNX file with
 * external data one tensor at a time, its tasks given the driver's model (local mode) or its broadcast parts,
 * ONNX Runtime sessions from memory-mapped files, the equalized model written with external data. The scale table and
 * the evaluation are those of the ordinary run.
 */
class LargeModelJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @AfterEach
    void clear() {
        System.clearProperty("quantcal.large-model-bytes");
        BroadcastModel.shareInLocalMode(true);
    }

    @Test
    @SuppressWarnings("unchecked")
    void aLargeModelGivesTheTableOfTheOrdinaryRun() throws Exception {
        String[] o = {"pipeline=[fold-bn, equalize, calibrate, export, evaluate]", "calibration.limit=40",
                "evaluation.limit=100"};
        QuantcalJob.Result plain = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("a").toString(), o), out);

        System.setProperty("quantcal.large-model-bytes", "20000"); // resnet_small holds 80 KB of tensor data
        OnnxModel m = OnnxModel.load(Path.of(RESNET));
        org.junit.jupiter.api.Assertions.assertTrue(m.large());
        // the model as an exporter writes a large one: a file and its external data
        Path dir = Files.createDirectories(tmp.resolve("model"));
        OnnxModel.WithExternalData w = m.withExternalData("resnet_small.onnx.data");
        Files.write(dir.resolve("resnet_small.onnx"), w.model());
        try (var s = Files.newOutputStream(dir.resolve("resnet_small.onnx.data"))) {
            w.writeData(s);
        }
        String model = dir.resolve("resnet_small.onnx").toString();

        for (boolean share : new boolean[] {true, false}) {
            BroadcastModel.shareInLocalMode(share); // false: the parts travel as broadcast chunks, as on a cluster
            String output = tmp.resolve("b" + share).toString();
            QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(model, CALIB, output, o), out);
            JobFixtures.assertSameScaleTable(spark(), output, tmp.resolve("a").toString());
            Map<String, Object> ea = (Map<String, Object>) ((Map<String, Object>) plain.summary().get("passes")).get("evaluate");
            Map<String, Object> eb = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("evaluate");
            assertEquals(ea.get("top1_quantized"), eb.get("top1_quantized"), "share " + share);
            // a large model's comparison sessions read its weights unpacked (pre-packing off): ONNX Runtime sums the
            // FP32 products in another order, so the SQNR agrees to rounding (28.4883966 dB either way), not bit for bit
            assertEquals((Double) ea.get("output_sqnr_db"), (Double) eb.get("output_sqnr_db"), 1e-5, "share " + share);
            // the QDQ model is large too (its int8 weights above the lowered threshold): written with its data file
            Map<String, Object> ex = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("export");
            assertEquals(Path.of(output, "model_qdq.onnx.data").toUri().toString().replace("file:///", "file:/"),
                    ex.get("qdq_model_data").toString().replace("file:///", "file:/"));
            org.junit.jupiter.api.Assertions.assertTrue(console.toString(java.nio.charset.StandardCharsets.UTF_8)
                    .contains("            model_qdq.onnx.data\n"), "the run's listing names the data file");
            // the equalized FP32 model is written with its external data, and reads back as the model equalize made
            Path eq = Path.of(output, io.quantcal.job.pipeline.EqualizePass.EQUALIZED_MODEL);
            org.junit.jupiter.api.Assertions.assertTrue(Files.exists(Path.of(eq + ".data")), "external data beside the equalized model");
            System.clearProperty("quantcal.large-model-bytes");
            OnnxModel back = OnnxModel.load(eq);
            OnnxModel expected = OnnxModel.load(Path.of(tmp.resolve("a").toString(), io.quantcal.job.pipeline.EqualizePass.EQUALIZED_MODEL));
            assertEquals(expected.sha256(), back.sha256(), "share " + share);
            System.setProperty("quantcal.large-model-bytes", "20000");
        }
    }
}
