package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.EVAL;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.export.TensorRtCache;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.job.table.ScaleTable;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The job end to end on the bundled Fashion-MNIST model, in local Spark (spark-testing-base). */
class QuantcalJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    QuantcalJob.Result run(QuantcalConfig cfg) {
        return QuantcalJob.run(spark(), cfg, out);
    }

    @Test
    void endToEndW8A8WritesEveryRowAndARunnableQdqModelWithinOnePointOfFp() throws Exception {
        String output = tmp.resolve("e2e").toString();
        QuantcalJob.Result r = run(JobFixtures.config(RESNET, CALIB, output, "evaluation.speed=true"));

        // every quantizable node has weight and activation rows
        OnnxModel folded = io.quantcal.kernels.onnx.BatchNormFolder.fold(OnnxModel.load(Path.of(RESNET))).model();
        List<ScaleRow> rows = ScaleTable.read(spark(), output + "/" + QuantcalJob.SCALE_TABLE);
        assertEquals(r.rows(), rows, "the table read back equals what the run wrote, in order");
        for (QuantizableNode n : folded.quantizableNodes()) {
            List<ScaleRow> w = rows.stream().filter(x -> x.node().equals(n.name()) && x.role().equals("weight")).toList();
            List<ScaleRow> a = rows.stream().filter(x -> x.node().equals(n.name()) && x.role().equals("activation")).toList();
            assertEquals(n.outputChannels(), w.size(), "per-channel weight rows of " + n.name());
            assertEquals(1, a.size(), "activation row of " + n.name());
            assertEquals(n.input(), a.get(0).tensor());
            for (ScaleRow x : w) {
                assertEquals(-127, x.qmin());
                assertEquals(0, x.zeroPoint());
                assertEquals(x.channel(), w.indexOf(x));
            }
            assertEquals(0, a.get(0).qmin());
            assertEquals(255, a.get(0).qmax());
        }
        // the QDQ model runs in ONNX Runtime and gives what the evaluate pass measured
        Path qdq = Path.of(output, "model_qdq.onnx");
        try (ModelRunner q = ModelRunner.open(OnnxModel.load(qdq), RunnerOptions.singleThreaded())) {
            float[] x = new float[784];
            Map<String, FloatTensor> y = q.run(FloatTensor.of("input", x, 1, 1, 28, 28));
            assertEquals(10, y.get("logits").data().length);
        }
        JsonNode run = new ObjectMapper().readTree(Path.of(output, "run.json").toFile());
        JsonNode ev = run.get("passes").get("evaluate");
        assertEquals(1000, ev.get("samples").asInt());
        double fp = ev.get("top1_fp32").asDouble(), q = ev.get("top1_quantized").asDouble();
        assertEquals(0.849, fp, 1e-9, "FP32 accuracy of resnet_small on the 1000 eval images (PyTorch: 84.90%)");
        Assertions.assertTrue(Math.abs(fp - q) <= 0.01, "W8A8 within 1 point of FP: " + fp + " vs " + q);
        assertEquals(7, ev.get("layer_sqnr_db").size());
        Assertions.assertTrue(run.get("timings_ms").has("calibrate"));
        assertEquals("test-run", run.get("run_id").asText());
        // the driver's CPU; the tests export the weights this CPU computes exactly, so evaluate has no warning
        assertEquals(!io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates(),
                run.get("driver_cpu").get("onnxruntime_u8s8_exact").asBoolean());
        if (ev.has("warnings")) {
            for (JsonNode w : ev.get("warnings")) Assertions.assertFalse(w.asText().contains("VNNI"), w.asText());
        }
        // evaluation.speed: both models timed in turn on one batch of 8 evaluation samples, the ratio of the medians
        JsonNode speed = ev.get("speed");
        assertEquals(8, speed.get("batch").asInt());
        assertEquals(1, speed.get("intra_op_threads").asInt());
        Assertions.assertTrue(speed.get("runs").asInt() >= 5, speed.toString());
        Assertions.assertTrue(speed.get("fp32_ms").asDouble() > 0 && speed.get("quantized_ms").asDouble() > 0, speed.toString());
        assertEquals(speed.get("fp32_ms").asDouble() / speed.get("quantized_ms").asDouble(), speed.get("speedup").asDouble(), 1e-9);
        boolean slowWarning = ev.has("warnings") && ev.get("warnings").toString().contains("runs slower than FP32");
        assertEquals(speed.get("speedup").asDouble() < 1, slowWarning, ev.toString());

        // TensorRT cache: header and one line per activation tensor, scale = amax/127
        List<String> cache = Files.readAllLines(Path.of(output, "calibration.cache"));
        assertEquals("TRT-8601-EntropyCalibration2", cache.get(0));
        Set<String> acts = rows.stream().filter(x -> x.role().equals("activation")).map(ScaleRow::tensor)
                .collect(Collectors.toSet());
        assertEquals(acts.size(), cache.size() - 1);
        String[] kv = cache.get(1).split(": ");
        ScaleRow a0 = rows.stream().filter(x -> x.tensor().equals(kv[0])).findFirst().orElseThrow();
        assertEquals((float) (Math.max(-a0.rangeMin(), a0.rangeMax()) / 127), TensorRtCache.parse(kv[1]));
        JsonNode aimet = new ObjectMapper().readTree(Path.of(output, "encodings.json").toFile());
        assertEquals("1.0.0", aimet.get("version").asText(), "AIMET's current format by default");
        assertEquals(acts.size(), aimet.get("activation_encodings").size());
        assertFalse(Files.exists(tmp.resolve(".e2e.tmp-test-run")), "no temporary directory left behind");
    }
}
