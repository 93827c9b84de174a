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
}
