package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bundled network rewritten as exporters write weights (one behind an Identity, one as a Constant node): every
 * layer is still found, coverage says so, and the scale table equals the one of the plain model.
 */
class FrontEndTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /** resnet_small with the first Conv's weight behind Identity and the second Conv's weight in a Constant node. */
    static byte[] exporterStyle() throws Exception {
        ModelProto m = ModelProto.parseFrom(Files.readAllBytes(Path.of(RESNET)));
        GraphProto.Builder g = m.getGraph().toBuilder();
        List<Integer> convs = new java.util.ArrayList<>();
        for (int i = 0; i < g.getNodeCount(); i++) if (g.getNode(i).getOpType().equals("Conv")) convs.add(i);
        String w1 = g.getNode(convs.get(0)).getInput(1);
        String w2 = g.getNode(convs.get(1)).getInput(1);
        g.setNode(convs.get(0), g.getNode(convs.get(0)).toBuilder().setInput(1, w1 + "_identity"));
        TensorProto t2 = null;
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals(w2)) {
                t2 = g.getInitializer(i);
                g.removeInitializer(i);
                break;
            }
        }
        NodeProto identity = NodeProto.newBuilder().setOpType("Identity").setName("dedup").addInput(w1)
                .addOutput(w1 + "_identity").build();
        NodeProto constant = NodeProto.newBuilder().setOpType("Constant").setName("const_weight").addOutput(w2)
                .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
                        .setT(t2.toBuilder().clearName())).build();
        g.addNode(0, constant).addNode(0, identity);
        return m.toBuilder().setGraph(g).build().toByteArray();
    }

    @Test
    @SuppressWarnings("unchecked")
    void weightsBehindIdentityAndConstantNodesAreQuantizedAndCoverageIsComplete() throws Exception {
        Path model = Files.write(tmp.resolve("exported.onnx"), exporterStyle());
        String[] o = {"pipeline=[calibrate, export, evaluate]", "calibration.limit=40", "evaluation.limit=100"};
        QuantcalJob.Result plain = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("a").toString(), o), out);
        QuantcalJob.Result folded = QuantcalJob.run(spark(), JobFixtures.config(model.toString(), CALIB, tmp.resolve("b").toString(), o), out);
        assertEquals(7, folded.summary().get("quantizable_layers"));
        Map<String, Object> cov = (Map<String, Object>) folded.summary().get("coverage");
        assertEquals(7L, ((Number) cov.get("quantized")).longValue());
        assertEquals(7, cov.get("nodes"));
        assertEquals(List.of(), cov.get("fp32"));
        Map<String, Object> front = (Map<String, Object>) folded.summary().get("front_end");
        assertEquals(2, front.get("folded_nodes"));
        Assertions.assertTrue(console.toString(java.nio.charset.StandardCharsets.UTF_8)
                .contains("coverage: 7 of 7 Conv/ConvTranspose/Gemm/MatMul nodes quantized"));
        // the same scales for every tensor (the table names the weight tensors the model uses)
        assertEquals(plain.rows().size(), folded.rows().size());
        for (int i = 0; i < plain.rows().size(); i++) {
            assertEquals(plain.rows().get(i).scale(), folded.rows().get(i).scale(), plain.rows().get(i).tensor());
            assertEquals(plain.rows().get(i).node(), folded.rows().get(i).node());
        }
        Map<String, Object> a = (Map<String, Object>) ((Map<String, Object>) plain.summary().get("passes")).get("evaluate");
        Map<String, Object> b = (Map<String, Object>) ((Map<String, Object>) folded.summary().get("passes")).get("evaluate");
        assertEquals(a.get("top1_quantized"), b.get("top1_quantized"));
        assertEquals(a.get("output_sqnr_db"), b.get("output_sqnr_db"));
    }

    /**
     * resnet_small with the third Conv's weight computed in the graph from two halves of it, each stored divided by 2
     * (Concat along the output channels, Mul by 2: exact in float), and every initializer also listed as a graph input
     * (torch.onnx's keep_initializers_as_inputs).
     */
    static byte[] computedWeightAndInitializerInputs() throws Exception {
        ModelProto m = ModelProto.parseFrom(Files.readAllBytes(Path.of(RESNET)));
        GraphProto.Builder g = m.getGraph().toBuilder();
        int conv = -1;
        for (int i = 0, seen = 0; i < g.getNodeCount() && conv < 0; i++) {
            if (g.getNode(i).getOpType().equals("Conv") && seen++ == 2) conv = i;
        }
        String w = g.getNode(conv).getInput(1);
        int at = -1;
        for (int i = 0; i < g.getInitializerCount(); i++) if (g.getInitializer(i).getName().equals(w)) at = i;
        TensorProto t = g.getInitializer(at);
        float[] v = new float[t.getRawData().size() / 4];
        t.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
        Assertions.assertTrue(v.length > 0, "resnet_small stores its weights as raw data");
        int half = (int) (t.getDims(0) / 2) * (v.length / (int) t.getDims(0));
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        long[] halfDims = dims.clone();
        halfDims[0] /= 2;
        float[] a = new float[half];
        float[] b = new float[v.length - half];
        for (int i = 0; i < v.length; i++) {
            if (i < half) a[i] = v[i] / 2; else b[i - half] = v[i] / 2;
        }
        g.removeInitializer(at);
        g.addInitializer(io.quantcal.kernels.onnx.Graphs.floatTensor(w + ".a", a, halfDims));
        long[] bDims = dims.clone();
        bDims[0] -= halfDims[0];
        g.addInitializer(io.quantcal.kernels.onnx.Graphs.floatTensor(w + ".b", b, bDims));
        g.addInitializer(io.quantcal.kernels.onnx.Graphs.floatTensor(w + ".two", new float[] {2f}));
        g.addNode(conv, io.quantcal.kernels.onnx.Graphs.node("Mul", "wscale", List.of(w + ".cat", w + ".two"), List.of(w)));
        g.addNode(conv, io.quantcal.kernels.onnx.Graphs.node("Concat", "wcat", List.of(w + ".a", w + ".b"), List.of(w + ".cat"),
                Map.of("axis", 0L)));
        for (TensorProto i : g.getInitializerList()) {
            g.addInput(io.quantcal.kernels.onnx.Graphs.floatValue(i.getName(), i.getDimsList().stream().mapToLong(Long::longValue).toArray()));
        }
        return m.toBuilder().setGraph(g).build().toByteArray();
    }

    @Test
    @SuppressWarnings("unchecked")
    void aWeightComputedFromConstantsIsEvaluatedAndInitializersListedAsInputsAreConstants() throws Exception {
        Path model = Files.write(tmp.resolve("computed.onnx"), computedWeightAndInitializerInputs());
        String[] o = {"pipeline=[calibrate, export, evaluate]", "calibration.limit=40", "evaluation.limit=100"};
        QuantcalJob.Result plain = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("a").toString(), o), out);
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(model.toString(), CALIB, tmp.resolve("b").toString(), o), out);
        Map<String, Object> cov = (Map<String, Object>) r.summary().get("coverage");
        assertEquals(List.of(), cov.get("fp32"));
        assertEquals(7L, ((Number) cov.get("quantized")).longValue());
        Map<String, Object> front = (Map<String, Object>) r.summary().get("front_end");
        assertEquals(1, ((List<?>) front.get("weights_evaluated")).size());
        int initializers = ModelProto.parseFrom(Files.readAllBytes(model)).getGraph().getInitializerCount();
        assertEquals(initializers, ((List<?>) front.get("initializers_listed_as_inputs")).size());
        String console = this.console.toString(java.nio.charset.StandardCharsets.UTF_8);
        Assertions.assertTrue(console.contains("model: 1 weight computed from constants ({Concat=1, Mul=1}) evaluated once by"
                + " ONNX Runtime"), console);
        Assertions.assertFalse(console.contains("appears in graph inputs"), "no ONNX Runtime warning about them");
        // the QDQ model's only input is the image
        ModelProto qdq = ModelProto.parseFrom(Files.readAllBytes(tmp.resolve("b").resolve("model_qdq.onnx")));
        assertEquals(1, qdq.getGraph().getInputCount());
        JobFixtures.assertSameScaleTable(spark(), tmp.resolve("b").toString(), tmp.resolve("a").toString());
        Map<String, Object> ea = (Map<String, Object>) ((Map<String, Object>) plain.summary().get("passes")).get("evaluate");
        Map<String, Object> eb = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("evaluate");
        assertEquals(ea.get("output_sqnr_db"), eb.get("output_sqnr_db"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void excludedNodesAndOpTypesStayFp32AndAreListedInCoverage() {
        List<io.quantcal.kernels.onnx.QuantizableNode> all = io.quantcal.kernels.onnx.OnnxModel.load(Path.of(RESNET)).quantizableNodes();
        String firstConv = all.get(0).name();
        long gemms = all.stream().filter(n -> n.opType().equals("Gemm")).count();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("x").toString(),
                "pipeline=[calibrate, export]", "calibration.limit=20", "quantization.exclude.nodes=[" + firstConv + "]",
                "quantization.exclude.op-types=Gemm"), out);
        assertEquals((int) (all.size() - 1 - gemms), r.summary().get("quantizable_layers"));
        List<Map<String, Object>> fp32 = (List<Map<String, Object>>) ((Map<String, Object>) r.summary().get("coverage")).get("fp32");
        assertEquals(1 + gemms, fp32.size());
        Assertions.assertTrue(gemms >= 1, "the example has a Gemm head");
        for (Map<String, Object> e : fp32) assertEquals("excluded by config (quantcal.quantization.exclude)", e.get("reason"));
        Assertions.assertTrue(r.rows().stream().noneMatch(row -> row.node().equals(firstConv)), "no rows for an excluded node");
        io.quantcal.job.config.ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.quantcal.job.config.ConfigException.class, () -> QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB,
                        tmp.resolve("y").toString(), "pipeline=[calibrate]", "quantization.exclude.nodes=[nope]"), out));
        Assertions.assertTrue(e.getMessage().startsWith("quantcal.quantization.exclude.nodes: nope is not a Conv, Gemm or MatMul node"),
                e.getMessage());
    }
}
