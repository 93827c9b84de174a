package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.export.TensorRtCache;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.job.table.ScaleTable;
import io.quantcal.kernels.onnx.OnnxModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** export.profile end to end on the bundled ResNet: what each profile quantizes, and that the QDQ model is the table. */
class ExportProfilesTest extends SparkJobTest {

    @TempDir
    Path tmp;

    QuantcalJob.Result run(String output, String... overrides) {
        return QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output, JobFixtures.concat(overrides,
                "pipeline=[fold-bn,calibrate,export,evaluate]", "evaluation.limit=300")), out);
    }

    /** Activation QuantizeLinear nodes by the tensor they quantize: [scale, zero point, zero point type]. */
    static Map<String, double[]> activationQuantizers(OnnxModel m) {
        Map<String, TensorProto> init = new HashMap<>();
        for (TensorProto t : m.graph().getInitializerList()) init.put(t.getName(), t);
        Map<String, double[]> q = new HashMap<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("QuantizeLinear") || init.containsKey(n.getInput(0))) continue;
            TensorProto s = init.get(n.getInput(1)), z = init.get(n.getInput(2));
            int zp = z.getDataType() == TensorProto.DataType.INT8_VALUE ? (byte) z.getRawData().byteAt(0)
                    : z.getRawData().byteAt(0) & 0xff;
            double[] prev = q.put(n.getInput(0), new double[] {s.getRawData().asReadOnlyByteBuffer()
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat(), zp, z.getDataType()});
            if (prev != null) Assertions.assertEquals(prev[0], q.get(n.getInput(0))[0], "one scale per tensor " + n.getInput(0));
        }
        return q;
    }

    /** Every activation row is one QuantizeLinear of the model with the row's float32 scale and zero point, and back. */
    static void assertModelIsTheTable(OnnxModel qdq, List<ScaleRow> rows) {
        Map<String, double[]> q = activationQuantizers(qdq);
        Set<String> tensors = rows.stream().filter(r -> r.role().equals("activation")).map(ScaleRow::tensor)
                .collect(Collectors.toSet());
        Assertions.assertEquals(tensors, q.keySet(), "quantized activations = the table's activation tensors");
        for (ScaleRow r : rows) {
            if (!r.role().equals("activation")) continue;
            double[] z = q.get(r.tensor());
            Assertions.assertEquals((float) r.scale(), (float) z[0], r.tensor() + " under " + r.node());
            Assertions.assertEquals(r.zeroPoint(), (int) z[1], r.tensor() + " under " + r.node());
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> pass(QuantcalJob.Result r, String name) {
        return (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get(name);
    }

    @Test
    void ortProfileQuantizesOutputsAddsAndPoolingFoldsTheRelusAndStaysWithinAPointOfFp() throws Exception {
        String output = tmp.resolve("ort").toString();
        QuantcalJob.Result r = run(output);
        List<ScaleRow> rows = ScaleTable.read(spark(), output + "/" + QuantcalJob.SCALE_TABLE);
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        assertModelIsTheTable(qdq, rows);
        // resnet_small: 7 layer inputs + the two residual Adds' outputs, the pooled tensor and the block outputs
        Set<String> ops = rows.stream().filter(x -> x.role().equals("activation")).map(ScaleRow::opType)
                .collect(Collectors.toSet());
        Assertions.assertEquals(Set.of("Conv", "Gemm", "Add", "GlobalAveragePool", "Flatten"), ops);
        Assertions.assertEquals(0, qdq.nodes().stream().filter(n -> n.getOpType().equals("Relu")).count(),
                "every Relu folded into its output quantization (zero point 0 on uint8)");
        for (ScaleRow x : rows) {
            if (!x.role().equals("activation")) continue;
            Assertions.assertEquals(0, x.qmin());
            Assertions.assertEquals(255, x.qmax());
        }
        // the Flatten shares the pooled tensor's parameters, so ONNX Runtime drops the Q/DQ around it
        ScaleRow gap = rows.stream().filter(x -> x.opType().equals("Flatten")).findFirst().orElseThrow();
        ScaleRow fc = rows.stream().filter(x -> x.opType().equals("Gemm") && x.role().equals("activation")).findFirst()
                .orElseThrow();
        Assertions.assertNotEquals(gap.tensor(), fc.tensor(), "the pooled tensor, and the Flatten output the Gemm reads");
        Assertions.assertEquals(gap.scale(), fc.scale());
        Assertions.assertEquals(gap.zeroPoint(), fc.zeroPoint());
        Map<String, Object> ev = pass(r, "evaluate");
        double fp = (double) ev.get("top1_fp32"), quant = (double) ev.get("top1_quantized");
        Assertions.assertTrue(Math.abs(fp - quant) <= 0.01, "top-1 FP32 " + fp + " vs quantized " + quant);
        Assertions.assertEquals("ort", pass(r, "export").get("profile"));
        Assertions.assertEquals(5L, ((Number) pass(r, "export").get("activations_folded")).longValue(), "5 Relus in resnet_small");
    }

    @Test
    void tensorRtProfileWritesSymmetricInt8ActivationsOnLayerAndResidualInputsAndACacheWithTheSameScales()
            throws Exception {
        String output = tmp.resolve("trt").toString();
        run(output, "export.profile=tensorrt", "evaluation.speed=true");
        // timed in ONNX Runtime like any model, but a tensorrt model is not held to ONNX Runtime's CPU speed
        com.fasterxml.jackson.databind.JsonNode ev = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(Path.of(output, "run.json").toFile()).get("passes").get("evaluate");
        Assertions.assertTrue(ev.get("speed").get("speedup").asDouble() > 0, ev.toString());
        Assertions.assertFalse(ev.has("warnings") && ev.get("warnings").toString().contains("runs slower than FP32"), ev.toString());
        List<ScaleRow> rows = ScaleTable.read(spark(), output + "/" + QuantcalJob.SCALE_TABLE);
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        assertModelIsTheTable(qdq, rows);
        for (ScaleRow x : rows) {
            if (!x.role().equals("activation")) continue;
            Assertions.assertEquals(0, x.zeroPoint(), x.tensor());
            Assertions.assertEquals(-127, x.qmin(), x.tensor());
            Assertions.assertEquals(127, x.qmax(), x.tensor());
            Assertions.assertTrue(Set.of("Conv", "Gemm", "Add").contains(x.opType()), x.opType());
        }
        Assertions.assertEquals(2 * 2, rows.stream().filter(x -> x.opType().equals("Add")).count(), "both inputs of 2 residual Adds");
        Assertions.assertFalse(rows.stream().anyMatch(x -> x.role().equals("bias")), "TensorRT keeps float biases");
        for (double[] q : activationQuantizers(qdq).values()) Assertions.assertEquals(TensorProto.DataType.INT8_VALUE, (int) q[2]);
        // the weights stay float behind a Q/DQ pair; no int32 bias
        Assertions.assertTrue(qdq.graph().getInitializerList().stream().noneMatch(t -> t.getDataType() == TensorProto.DataType.INT32_VALUE));
        Map<String, Float> cache = new HashMap<>();
        List<String> lines = Files.readAllLines(Path.of(output, "calibration.cache"));
        for (String l : lines.subList(1, lines.size())) {
            String[] kv = l.split(": ");
            cache.put(kv[0], TensorRtCache.parse(kv[1]));
        }
        Map<String, double[]> q = activationQuantizers(qdq);
        Assertions.assertEquals(q.keySet(), cache.keySet());
        for (var e : q.entrySet()) Assertions.assertEquals((float) e.getValue()[0], cache.get(e.getKey()), e.getKey());
    }

    @Test
    void aProfileItsTargetCannotRunIsAConfigError() {
        var e = Assertions.assertThrows(io.quantcal.job.config.ConfigException.class, () -> JobFixtures.config(RESNET, CALIB, "/tmp/x",
                "export.profile=tensorrt", "quantization.activations.bits=4"));
        Assertions.assertTrue(e.getMessage().startsWith("quantcal.quantization.activations.bits: export.profile = tensorrt takes 8-bit"),
                e.getMessage());
        e = Assertions.assertThrows(io.quantcal.job.config.ConfigException.class, () -> JobFixtures.config(RESNET, CALIB, "/tmp/x",
                "export.profile=tensorrt", "quantization.weights.symmetric=false"));
        Assertions.assertTrue(e.getMessage().contains("symmetric = false"), e.getMessage());
        e = Assertions.assertThrows(io.quantcal.job.config.ConfigException.class, () -> JobFixtures.config(RESNET, CALIB, "/tmp/x",
                "export.profile=qnn"));
        Assertions.assertEquals("quantcal.export.profile: expected ort or tensorrt, got qnn", e.getMessage());
    }
}
