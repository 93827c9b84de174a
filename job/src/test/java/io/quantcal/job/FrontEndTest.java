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
