package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto.DataType;
import onnx.Onnx.ValueInfoProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RankHintsTest {

    @TempDir
    Path tmp;

    /**
     * x [N, 4, 8, 8] → Reshape(x, Shape(x)) (a target computed at run time, as exporters write for a dynamic batch:
     * shape inference gives its output no rank) → conv1 → relu → conv2 → GAP → flatten → fc.
     */
    static OnnxModel dynamicReshape() {
        TestModels.Builder b = new TestModels.Builder(21);
        b.node(Graphs.node("Shape", "shape", List.of("x"), List.of("s")));
        b.node(Graphs.node("Reshape", "reshape", List.of("x", "s"), List.of("y")));
        b.conv("conv1", "y", "c1", 4, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", 8, 8, 3, 1, 1, 1, true);
        b.classifier("c2", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

        static ValueInfoProto declared(OnnxModel m, String tensor) {
        return m.graph().getValueInfoList().stream().filter(v -> v.getName().equals(tensor)).findFirst().orElse(null);
    }

    static void assertRank(OnnxModel m, String tensor, DataType type, int rank) {
        ValueInfoProto v = declared(m, tensor);
        assertTrue(v != null, tensor + " declared");
        assertEquals(type.getNumber(), v.getType().getTensorType().getElemType(), tensor);
        assertEquals(rank, v.getType().getTensorType().getShape().getDimCount(), tensor);
        v.getType().getTensorType().getShape().getDimList()
                .forEach(d -> assertFalse(d.hasDimValue() || d.hasDimParam(), "dimensions left unknown"));
    }

    @Test
    void aRunTimeReshapeTargetNoLongerKeepsItsConvOffOnnxRuntimesChannelsLastKernel() throws Exception {
        OnnxModel m = dynamicReshape();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = FloatTensor.of("x", TestModels.uniform(new java.util.Random(3), 4 * 4 * 64, -1, 2), 4, 4, 8, 8);
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, x);
        // 7-bit weights: ONNX Runtime's integer kernels are exact on every CPU (see StemPaddingTest)
        Map<String, QuantParams> w = StemPaddingTest.weights(m, true, 7);
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        OnnxModel hinted = QdqExporter.export(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);

        // conv1 reads y through its Q/DQ pair: y, the uint8 codes and the DequantizeLinear's output get rank 4
        NodeProto conv1 = hinted.node("conv1");
        NodeProto dq = hinted.producer(conv1.getInput(0));
        assertEquals("DequantizeLinear", dq.getOpType());
        assertEquals("y", hinted.producer(dq.getInput(0)).getInput(0), "y → QuantizeLinear → DequantizeLinear → conv1");
        assertRank(hinted, "y", DataType.FLOAT, 4);
        assertRank(hinted, dq.getInput(0), DataType.UINT8, 4);
        assertRank(hinted, conv1.getInput(0), DataType.FLOAT, 4);
        assertEquals(null, declared(plain, "y"));
        // nothing declared twice, and the graph input keeps its own declaration
        assertEquals(0, hinted.graph().getValueInfoList().stream().filter(v -> v.getName().equals("x")).count());
        assertEquals(hinted.graph().getValueInfoCount(),
                hinted.graph().getValueInfoList().stream().map(ValueInfoProto::getName).distinct().count());

        // what ONNX Runtime makes of them: without the declaration both convolutions (conv2 reads conv1's output, of
        // no rank either) stay the NCHW QLinearConv (ONNX domain), which converts layouts on every call; with it,
        // both run channels-last (com.microsoft)
        Map<String, Long> before = TestModels.optimizedOps(plain, tmp.resolve("plain.onnx")), after = TestModels.optimizedOps(hinted, tmp.resolve("hinted.onnx"));
        assertEquals(2L, before.getOrDefault(":QLinearConv", 0L), before.toString());
        assertEquals(0L, after.getOrDefault(":QLinearConv", 0L), after.toString());
        assertEquals(2L, after.getOrDefault("com.microsoft:QLinearConv", 0L), after.toString());

        // the same numbers: operator by operator, and on the integer kernels (NCHW against channels-last)
        assertArrayEquals(StemPaddingTest.run(plain, x, OrtSession.SessionOptions.OptLevel.NO_OPT),
                StemPaddingTest.run(hinted, x, OrtSession.SessionOptions.OptLevel.NO_OPT));
        assertArrayEquals(StemPaddingTest.run(plain, x, OrtSession.SessionOptions.OptLevel.ALL_OPT),
                StemPaddingTest.run(hinted, x, OrtSession.SessionOptions.OptLevel.ALL_OPT));
    }

    @Test
    void modelsWithoutARunTimeReshapeAreLeftAsTheyWere() {
        OnnxModel m = StemPaddingTest.stem(8, 13);
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, StemPaddingTest.input(8));
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, StemPaddingTest.weights(m, true), Map.of(),
                QdqOptions.onnxRuntime(), p);
        assertSame(plain, RankHints.declare(plain));
        // a Reshape to a constant target: shape inference sees through it
        OnnxModel constant = reshapeTo(true);
        assertSame(constant, RankHints.declare(constant));
        OnnxModel runTime = reshapeTo(false);
        assertRank(RankHints.declare(runTime), "y", DataType.FLOAT, 4);
    }

    /** x [N, 16] → Reshape to [N, 4, 2, 2] (an int64 initializer, or the same values through Shape/Concat) → conv. */
    static OnnxModel reshapeTo(boolean constantTarget) {
        TestModels.Builder b = new TestModels.Builder(8);
        if (constantTarget) {
            b.node(Graphs.node("Constant", "target", List.of(), List.of("t"),
                    Map.of("value", Graphs.int64Tensor("t", new long[] {-1, 4, 2, 2}, 4))));
        } else {
            b.node(Graphs.node("Shape", "shape", List.of("x"), List.of("s")));
            b.node(Graphs.node("Slice", "batch", List.of("s", "zero", "one"), List.of("n")));
            b.node(Graphs.node("Concat", "target", List.of("n", "rest"), List.of("t"), Map.of("axis", 0L)));
        }
        b.node(Graphs.node("Reshape", "reshape", List.of("x", "t"), List.of("y")));
        b.conv("conv", "y", "c", 4, 4, 1, 1, 1, 0, true);
        ModelProto.Builder mp = b.model(13, List.of(Graphs.floatValue("x", -1, 16)), List.of(Graphs.floatValue("c", -1, 4, 2, 2)))
                .toBuilder();
        if (!constantTarget) {
            mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("zero", new long[] {0}, 1))
                    .addInitializer(Graphs.int64Tensor("one", new long[] {1}, 1))
                    .addInitializer(Graphs.int64Tensor("rest", new long[] {4, 2, 2}, 3));
        }
        return OnnxModel.parse("reshape.onnx", mp.build().toByteArray(), null);
    }
}
