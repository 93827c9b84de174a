package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ClassifierAsConv}: a classifier on a pooled tensor, quantized output, written as the 1×1 Conv it computes. */
class ClassifierAsConvTest {

    @TempDir
    Path tmp;

    /**
     * x [N, 3, 8, 8] → conv1 → relu → conv2 → SiLU (Sigmoid, Mul) → MaxPool 2×2 → GAP, then torch's head (Flatten →
     * fc1 Gemm 8→6 → Relu → fc2 Gemm 6→5 → logits) or paddle2onnx's (Reshape to a target computed from the pooled
     * tensor's Shape → MatMul 8→5 → Add bias → Softmax → logits). {@code targetRank} 3 makes the Reshape [1, N, 8].
     */
    static OnnxModel model(boolean paddle, int targetRank) {
        TestModels.Builder b = new TestModels.Builder(17);
        b.conv("conv1", "x", "c1", 3, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", 8, 8, 3, 1, 1, 1, true);
        b.siluMaxPoolGap("c2", "g");
        ModelProto.Builder mp;
        if (!paddle) {
            b.node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
            b.gemm("fc1", "f", "h", 8, 6, true, true).relu("relu_h", "h", "hr");
            b.gemm("fc2", "hr", "logits", 6, 5, true, true);
            mp = b.model(13, List.of(Graphs.floatValue("x", -1, 3, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5))).toBuilder();
        } else {
            b.node(Graphs.node("Shape", "shape", List.of("g"), List.of("gs")));
            b.node(Graphs.node("Slice", "slice", List.of("gs", "s0", "s1", "s_axes"), List.of("n")));
            List<String> parts = targetRank == 3 ? List.of("one", "n", "eight") : List.of("n", "eight");
            b.node(Graphs.node("Concat", "target", parts, List.of("t"), Map.of("axis", 0L)));
            b.node(Graphs.node("Reshape", "reshape", List.of("g", "t"), List.of("f")));
            b.matMul("fc", "f", "y", 8, 5);
            b.randomInit("fc.bias", 0.1, 5);
            b.node(Graphs.node("Add", "fc_bias", List.of("y", "fc.bias"), List.of("z")));
            b.node(Graphs.node("Softmax", "softmax", List.of("z"), List.of("logits"), Map.of("axis", -1L)));
            List<onnx.Onnx.ValueInfoProto> out = targetRank == 3
                    ? List.of(Graphs.floatValue("logits", 1, -1, 5)) : List.of(Graphs.floatValue("logits", -1, 5));
            mp = b.model(13, List.of(Graphs.floatValue("x", -1, 3, 8, 8)), out).toBuilder();
            mp.getGraphBuilder()
                    .addInitializer(Graphs.int64Tensor("s0", new long[] {0}, 1))
                    .addInitializer(Graphs.int64Tensor("s1", new long[] {1}, 1))
                    .addInitializer(Graphs.int64Tensor("s_axes", new long[] {0}, 1))
                    .addInitializer(Graphs.int64Tensor("one", new long[] {1}, 1))
                    .addInitializer(Graphs.int64Tensor("eight", new long[] {8}, 1));
        }
        return OnnxModel.parse(paddle ? "paddle_head.onnx" : "torch_head.onnx", mp.build().toByteArray(), null);
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.uniform(new Random(9), 4 * 3 * 64, -1, 2), 4, 3, 8, 8);
    }

    /** The export with and without the ort profile's post-passes, the same logits by the operators' definitions. */
    private static OnnxModel[] exports(OnnxModel m) {
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = input();
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, x);
        Map<String, QuantParams> w = StemPaddingTest.weights(m, true, 7);
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        OnnxModel full = QdqExporter.export(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        assertArrayEquals(StemPaddingTest.run(plain, x, OrtSession.SessionOptions.OptLevel.NO_OPT),
                StemPaddingTest.run(full, x, OrtSession.SessionOptions.OptLevel.NO_OPT), 1e-6f);
        return new OnnxModel[] {plain, full};
    }

    @Test
    void torchsHiddenClassifierBecomesAConvAndOnnxRuntimeRunsTheTailChannelsLast() throws Exception {
        OnnxModel[] e = exports(model(false, 2));
        OnnxModel full = e[1];
        NodeProto fc1 = full.node("fc1");
        assertEquals("Conv", fc1.getOpType());
        NodeProto wdq = full.producer(fc1.getInput(1));
        assertArrayEquals(new long[] {6, 8, 1, 1}, full.shape(wdq.getInput(0)));
        assertEquals(0, Nodes.intAttr(wdq, "axis", 1), "per channel on the Conv's output channels");
        // its codes are the Gemm's, row for row (transB: [out, in] already)
        NodeProto gemmW = e[0].producer(e[0].node("fc1").getInput(1));
        assertArrayEquals(e[0].initializerInts(gemmW.getInput(0)), full.initializerInts(wdq.getInput(0)));
        // the last layer writes the graph output in float: left a Gemm
        assertEquals("Gemm", full.node("fc2").getOpType());
        // the Flatten's output keeps its QuantizeLinear (the table's row), as an Identity of the pooled tensor
        assertEquals("Identity", full.node("flatten").getOpType());
        assertTrue(full.consumers("f").stream().anyMatch(n -> n.getOpType().equals("QuantizeLinear")));
        // ONNX Runtime: the MaxPool after the SiLU runs channels-last, as the QLinearConv after it lets it
        Map<String, Long> before = TestModels.optimizedOps(e[0], tmp.resolve("before.onnx"));
        Map<String, Long> after = TestModels.optimizedOps(full, tmp.resolve("after.onnx"));
        assertEquals(1L, before.getOrDefault(":MaxPool", 0L), before.toString());
        assertEquals(0L, after.getOrDefault(":MaxPool", 0L), after.toString());
        assertEquals(1L, after.getOrDefault("com.microsoft:NhwcMaxPool", 0L), after.toString());
        assertEquals(before.getOrDefault("com.microsoft:QLinearConv", 0L) + 1, (long) after.get("com.microsoft:QLinearConv"));
        // ONNX Runtime's integer kernels: 7-bit weights are exact on every CPU, so QGemm and QLinearConv sum the same
        // integers; their requantizations may round a tie apart, so the logits agree within a code of fc1's output
        FloatTensor x = input();
        float[] a = StemPaddingTest.run(e[0], x, OrtSession.SessionOptions.OptLevel.ALL_OPT);
        float[] b = StemPaddingTest.run(full, x, OrtSession.SessionOptions.OptLevel.ALL_OPT);
        double err = TestModels.relativeError(b, a);
        assertTrue(err < 2e-2, "relative error " + err);
    }

    @Test
    void paddlesComputedReshapeAndMatMulBecomeAConvTooButNotAThreeDimensionalTarget() {
        OnnxModel[] e = exports(model(true, 2));
        OnnxModel full = e[1];
        NodeProto fc = full.node("fc");
        assertEquals("Conv", fc.getOpType());
        NodeProto wdq = full.producer(fc.getInput(1));
        // MatMul's [in, out] codes transposed to [out, in, 1, 1], per channel on axis 0 (MatMul's was 1)
        int[] mm = e[0].initializerInts(e[0].producer(e[0].node("fc").getInput(1)).getInput(0));
        int[] conv = full.initializerInts(wdq.getInput(0));
        for (int o = 0; o < 5; o++) for (int c = 0; c < 8; c++) assertEquals(mm[c * 5 + o], conv[o * 8 + c]);
        assertEquals(0, Nodes.intAttr(wdq, "axis", 1));
        // the computed target's Shape/Slice/Concat went with the Reshape
        for (String gone : List.of("shape", "slice", "target")) {
            assertTrue(full.nodes().stream().noneMatch(n -> n.getName().equals(gone)), gone);
        }
        // [1, N, 8] is not the [N, C] a 1×1 Conv gives
        OnnxModel[] three = exports(model(true, 3));
        assertEquals("MatMul", three[1].node("fc").getOpType());
        assertEquals(3, ClassifierAsConv.length(three[1], "t", RankHints.ranksThroughProducers(three[1])));
    }
}
