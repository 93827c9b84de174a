package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole run on an image model whose linear layer and attention products are Einsums (as torchvision's MaxViT writes
 * its attention): each becomes the MatMul it computes, the linear one with a constant weight, the two products of
 * activations quantized on both inputs; nothing left as an Einsum, and the QDQ model tracks FP32.
 */
class EinsumModelJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /**
     * x [N, 1, 28, 28] → conv (8, 3×3, stride 2) → relu → Reshape [N, 8, 196] → Transpose → t [N, 196, 8];
     * q = einsum("bsh,dh->bsd", t, W); s = einsum("b i d, b j d -> b i j", q, t) / 4 → Softmax;
     * o = einsum("bij,bjd->bid", p, t) → ReduceMean over tokens → [N, 8] → fc → logits [N, 10].
     */
    static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(21);
        b.conv("conv", "x", "c", 1, 8, 3, 1, 2, 1, true).relu("relu", "c", "r");
        b.node(Graphs.node("Constant", "shape", List.of(), List.of("tokens_shape"),
                Map.of("value", Graphs.int64Tensor("tokens_shape", new long[] {0, 8, -1}, 3))));
        b.node(Graphs.node("Reshape", "flat", List.of("r", "tokens_shape"), List.of("rf")));
        b.node(Graphs.node("Transpose", "tokens", List.of("rf"), List.of("t"), Map.of("perm", new long[] {0, 2, 1})));
        b.randomInit("wq", 0.4, 8, 8);
        b.node(Graphs.node("Einsum", "proj", List.of("t", "wq"), List.of("q"), Map.of("equation", "bsh,dh->bsd")));
        b.node(Graphs.node("Einsum", "scores", List.of("q", "t"), List.of("s"), Map.of("equation", "b i d, b j d -> b i j")));
        b.init("quarter", new float[] {0.25f});
        b.node(Graphs.node("Mul", "scale", List.of("s", "quarter"), List.of("ss")));
        b.node(Graphs.node("Softmax", "softmax", List.of("ss"), List.of("p"), Map.of("axis", -1L)));
        b.node(Graphs.node("Einsum", "mix", List.of("p", "t"), List.of("o"), Map.of("equation", "bij,bjd->bid")));
        b.node(Graphs.node("ReduceMean", "pool", List.of("o"), List.of("f"), Map.of("axes", new long[] {1}, "keepdims", 0L)));
        b.gemm("fc", "f", "logits", 8, 10, true, true);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    @Test
    void einsumsThatAreMatrixProductsAreQuantizedAsMatMuls() throws Exception {
        Path file = tmp.resolve("einsum.onnx");
        Files.write(file, model().toByteArray());
        String output = tmp.resolve("o").toString();
        String text = JobFixtures.runOnExample(spark(), file, output);
        Assertions.assertTrue(text.contains("model: 3 Einsum that are matrix products written as MatMul"), text);
        Assertions.assertTrue(text.contains("coverage: 5 of 5 Conv/ConvTranspose/Gemm/MatMul nodes quantized"), text);
        JsonNode run = new ObjectMapper().readTree(Path.of(output, "run.json").toFile());
        assertEquals("[\"proj\",\"scores\",\"mix\"]", run.get("front_end").get("einsums_as_matmul").toString());
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        Assertions.assertFalse(qdq.nodes().stream().anyMatch(n -> n.getOpType().equals("Einsum")));
        // the linear Einsum's weight is an int8 initializer behind a DequantizeLinear, as a MatMul's is
        Assertions.assertEquals("DequantizeLinear", qdq.producer(qdq.node("proj").getInput(1)).getOpType());
        double sqnr = run.get("passes").get("evaluate").get("output_sqnr_db").asDouble();
        System.out.printf("EinsumModelJobTest: output SQNR %.2f dB%n", sqnr);
        Assertions.assertTrue(sqnr > 25, "output SQNR " + sqnr + " dB");
    }
}
