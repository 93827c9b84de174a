package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.io.TempDir;

/** {@link HardSwishDecomposition}: torch's HardSwish (opset ≥ 14) as x · HardSigmoid(x). */
class HardSwishDecompositionTest {

    @TempDir
    Path tmp;

    /** conv1 → HardSwish → conv2 → GAP → flatten → fc, opset 17. */
    static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(29);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true);
        b.node(Graphs.node("HardSwish", "hswish", List.of("c1"), List.of("a")));
        b.conv("conv2", "a", "c2", 8, 8, 3, 1, 1, 1, true);
        b.classifier("c2", 8, 5);
        return b.build(17, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    @Test
    void hardSwishBecomesItsDefinitionAndTheOrtProfileRunsItOnIntegers() throws Exception {
        OnnxModel m = model();
        HardSwishDecomposition.Result r = HardSwishDecomposition.rewrite(m);
        assertEquals(List.of("hswish"), r.rewritten());
        OnnxModel d = r.model();
        assertEquals("Mul", d.node("hswish").getOpType());
        assertEquals("a", d.node("hswish").getOutput(0));
        // the gate: HardSigmoid with torch's α = 1/6, β = ½ on the HardSwish's input
        var gateNode = d.producer(d.node("hswish").getInput(1));
        assertEquals("HardSigmoid", gateNode.getOpType());
        assertEquals("c1", gateNode.getInput(0));
        assertEquals(1.0 / 6, Nodes.floatAttr(gateNode, "alpha", 0), 1e-7);
        assertEquals(0.5, Nodes.floatAttr(gateNode, "beta", 0), 0);
        // the same function in ONNX Runtime (HardSwish is x · max(0, min(1, x/6 + ½)) by its definition)
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(6), 4 * 4 * 64, 3.0), 4, 4, 8, 8);
        double err = TestModels.relativeError(StemPaddingTest.run(d, x, OptLevel.NO_OPT), StemPaddingTest.run(m, x, OptLevel.NO_OPT));
        assertTrue(err < 1e-6, "relative error " + err);
        // nothing to do the second time
        assertSame(d, HardSwishDecomposition.rewrite(d).model());

        // the ort profile: the gate gets parameters of its own, ONNX Runtime runs a QLinearAdd (the gate) and a
        // QLinearMul (the product) where a float HardSwish sat between a DequantizeLinear and a QuantizeLinear
        QdqPlacement p = QdqPlacement.plan(d, QdqProfile.ORT);
        String gate = d.node("hswish").getInput(1);
        assertTrue(p.ownedTensors().contains(gate), p.ownedTensors().toString());
        OnnxModel qdq = QdqExporter.export(d, QdqPlacementTest.calibrate(d, p, x), StemPaddingTest.weights(d, true, 7),
                Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("hswish.onnx"));
        assertEquals(1L, ops.getOrDefault("com.microsoft:QLinearAdd", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault("com.microsoft:QLinearMul", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault(":QuantizeLinear", 0L), ops.toString());
        QdqPlacement before = QdqPlacement.plan(m, QdqProfile.ORT);
        OnnxModel qdqBefore = QdqExporter.export(m, QdqPlacementTest.calibrate(m, before, x),
                StemPaddingTest.weights(m, true, 7), Map.of(), QdqOptions.onnxRuntime(), before);
        Map<String, Long> opsBefore = TestModels.optimizedOps(qdqBefore, tmp.resolve("before.onnx"));
        // before: ONNX Runtime splits the HardSwish itself, but runs both halves in float behind a DequantizeLinear
        assertEquals(1L, opsBefore.getOrDefault(":HardSigmoid", 0L) + opsBefore.getOrDefault(":HardSwish", 0L),
                opsBefore.toString());
        assertEquals(1L, opsBefore.getOrDefault(":DequantizeLinear", 0L), opsBefore.toString());
        assertEquals(0L, ops.getOrDefault(":DequantizeLinear", 0L), ops.toString());
        // and the quantized model still tracks FP32
        double q = TestModels.relativeError(StemPaddingTest.run(qdq, x, OptLevel.ALL_OPT), StemPaddingTest.run(m, x, OptLevel.NO_OPT));
        assertTrue(q < 0.05, "quantized against FP32: relative error " + q);
    }

    /**
     * conv1 → paddle2onnx's hard-swish (Add 3, Clip 0..6, Mul by x, Div 6) → conv2 → a gate written as Add 3, Clip,
     * Mul 1/6 (constant first) → Mul(conv2, gate) → conv3 → GAP → fc, opset 11: both become HardSigmoid(x; 1/6, ½).
     */
    static OnnxModel handWritten() {
        TestModels.Builder b = new TestModels.Builder(31);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true);
        b.init("three", new float[] {3f});
        b.init("six", new float[] {6f});
        b.init("sixth", new float[] {1f / 6});
        b.node(Graphs.node("Add", "plus3", List.of("c1", "three"), List.of("p")));
        b.clip("relu6", "p", "r", 0f, 6f);
        b.node(Graphs.node("Mul", "times_x", List.of("r", "c1"), List.of("xr")));
        b.node(Graphs.node("Div", "div6", List.of("xr", "six"), List.of("a")));
        b.conv("conv2", "a", "c2", 8, 8, 3, 1, 1, 1, true);
        b.node(Graphs.node("Add", "gate_plus3", List.of("three", "c2"), List.of("gp")));
        b.clip("gate_relu6", "gp", "gr", 0f, 6f);
        b.node(Graphs.node("Mul", "gate_sixth", List.of("sixth", "gr"), List.of("gate2")));
        b.node(Graphs.node("Mul", "gated", List.of("c2", "gate2"), List.of("h")));
        b.conv("conv3", "h", "c3", 8, 8, 1, 1, 1, 0, true);
        b.classifier("c3", 8, 5);
        return b.build(11, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    @Test
    void handWrittenHardSigmoidsBecomeTheOpAndTheOrtProfileRunsThemOnIntegers() throws Exception {
        OnnxModel m = handWritten();
        HardSwishDecomposition.Result r = HardSwishDecomposition.rewrite(m);
        assertEquals(List.of("relu6", "gate_relu6"), r.handWritten());
        assertEquals(List.of(), r.rewritten());
        OnnxModel d = r.model();
        // product first: the Div now multiplies x by the gate, with the Div's output; the Add and the Clip are gone
        assertEquals("Mul", d.node("div6").getOpType());
        assertEquals("a", d.node("div6").getOutput(0));
        NodeProto gate = d.producer(d.node("div6").getInput(1));
        assertEquals("HardSigmoid", gate.getOpType());
        assertEquals("c1", gate.getInput(0));
        assertEquals("c1", d.node("div6").getInput(0));
        assertEquals(1.0 / 6, Nodes.floatAttr(gate, "alpha", 0), 1e-7);
        assertEquals(0.5, Nodes.floatAttr(gate, "beta", 0), 0);
        // the gate alone: the Mul by 1/6 is the HardSigmoid, same output, read by the Mul with conv2
        assertEquals("HardSigmoid", d.node("gate_sixth").getOpType());
        assertEquals(List.of("c2"), d.node("gate_sixth").getInputList());
        assertEquals("gate2", d.node("gate_sixth").getOutput(0));
        for (String gone : List.of("plus3", "relu6", "gate_plus3", "gate_relu6")) {
            assertTrue(d.nodes().stream().noneMatch(n -> n.getName().equals(gone)), gone);
        }
        assertTrue(!d.isInitializer("three") && !d.isInitializer("six") && !d.isInitializer("sixth"), "constants left");
        // the same function in ONNX Runtime, with values across the clip's both ends
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(8), 4 * 4 * 64, 4.0), 4, 4, 8, 8);
        double err = TestModels.relativeError(StemPaddingTest.run(d, x, OptLevel.NO_OPT), StemPaddingTest.run(m, x, OptLevel.NO_OPT));
        assertTrue(err < 1e-6, "relative error " + err);
        assertSame(d, HardSwishDecomposition.rewrite(d).model());

        // ort profile: both gates run as QLinearAdds and both products as QLinearMuls; nothing in float between
        QdqPlacement p = QdqPlacement.plan(d, QdqProfile.ORT);
        OnnxModel qdq = QdqExporter.export(d, QdqPlacementTest.calibrate(d, p, x), StemPaddingTest.weights(d, true, 7),
                Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("hand.onnx"));
        assertEquals(2L, ops.getOrDefault("com.microsoft:QLinearAdd", 0L), ops.toString());
        assertEquals(2L, ops.getOrDefault("com.microsoft:QLinearMul", 0L), ops.toString());
        assertEquals(0L, ops.getOrDefault(":DequantizeLinear", 0L) + ops.getOrDefault(":Clip", 0L)
                + ops.getOrDefault(":Div", 0L) + ops.getOrDefault(":HardSigmoid", 0L), ops.toString());
        double q = TestModels.relativeError(StemPaddingTest.run(qdq, x, OptLevel.ALL_OPT), StemPaddingTest.run(m, x, OptLevel.NO_OPT));
        assertTrue(q < 0.05, "quantized against FP32: relative error " + q);
    }

    @Test
    void lookAlikesThatAreNotTheGateStayAsTheyAre() {
        // Clip(0, 6) of x + 2, and a gate whose Clip output is also a graph output: nothing to rewrite
        TestModels.Builder b = new TestModels.Builder(33);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true);
        b.init("two", new float[] {2f});
        b.init("three", new float[] {3f});
        b.init("six", new float[] {6f});
        b.node(Graphs.node("Add", "plus2", List.of("c1", "two"), List.of("p")));
        b.clip("relu6", "p", "r", 0f, 6f);
        b.node(Graphs.node("Div", "div6", List.of("r", "six"), List.of("a")));
        b.node(Graphs.node("Add", "plus3", List.of("a", "three"), List.of("p2")));
        b.clip("relu6b", "p2", "r2", 0f, 6f);
        b.node(Graphs.node("Div", "div6b", List.of("r2", "six"), List.of("g")));
        OnnxModel m = b.build(11, List.of(Graphs.floatValue("x", -1, 4, 8, 8)),
                List.of(Graphs.floatValue("g", -1, 8, 8, 8), Graphs.floatValue("r2", -1, 8, 8, 8)));
        HardSwishDecomposition.Result r = HardSwishDecomposition.rewrite(m);
        assertEquals(List.of(), r.handWritten());
        assertSame(m, r.model());
    }
}
