package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ConstantOperands}: x · c and x + c (c one constant value) on integers, c as one exact code. */
class ConstantOperandsTest {

    @TempDir
    Path tmp;

    /**
     * conv1 → Relu → Mul(−1.5, constant first) → Add(0.375) → conv2 → Mul(x, [1, 1, 1, 1]-shaped 0.5) → GAP → fc,
     * and a Mul by 2 of the graph input (nothing quantized before it: it stays float).
     */
    static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(51);
        b.init("two", new float[] {2f});
        b.node(Graphs.node("Mul", "input_times_2", List.of("x", "two"), List.of("x2")));
        b.conv("conv1", "x2", "c1", 4, 8, 3, 1, 1, 1, true);
        b.relu("relu1", "c1", "r1");
        b.init("minus", new float[] {-1.5f});
        b.init("shift", new float[] {0.375f});
        b.init("half", new float[] {0.5f}, 1, 1, 1, 1);
        b.node(Graphs.node("Mul", "scale", List.of("minus", "r1"), List.of("m")));
        b.node(Graphs.node("Add", "offset", List.of("m", "shift"), List.of("a")));
        b.conv("conv2", "a", "c2", 8, 8, 3, 1, 1, 1, true);
        b.node(Graphs.node("Mul", "halve", List.of("c2", "half"), List.of("h")));
        b.classifier("h", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    @Test
    void aQuantizedActivationTimesOrPlusAConstantRunsOnIntegersWithTheConstantExact() throws Exception {
        OnnxModel m = model();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        // the three ops' outputs get parameters of their own; the input's Mul is left alone
        for (String t : List.of("m", "a", "h")) assertTrue(p.ownedTensors().contains(t), t + " in " + p.ownedTensors());
        assertTrue(p.sites().stream().noneMatch(s -> s.tensor().equals("x")), "the graph input's Mul is not planned");
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(3), 4 * 4 * 64, 1.0), 4, 4, 8, 8);
        OnnxModel qdq = QdqExporter.export(m, QdqPlacementTest.calibrate(m, p, x), StemPaddingTest.weights(m, true, 7),
                Map.of(), QdqOptions.onnxRuntime(), p);

        // each constant: a DequantizeLinear of one uint8 code whose value is the constant bit for bit
        Map<String, float[]> expected = Map.of("scale", new float[] {-1.5f}, "offset", new float[] {0.375f},
                "halve", new float[] {0.5f});
        for (var e : expected.entrySet()) {
            NodeProto n = qdq.node(e.getKey());
            NodeProto dq = null;
            for (String in : n.getInputList()) {
                NodeProto p0 = qdq.producer(in);
                if (p0 != null && p0.getOpType().equals("DequantizeLinear") && qdq.isInitializer(p0.getInput(0))
                        && qdq.initializer(p0.getInput(0)).getDataType() == TensorProto.DataType.UINT8_VALUE
                        && Tensors.count(qdq.shape(p0.getInput(0))) == 1) {
                    dq = p0;
                }
            }
            assertTrue(dq != null, e.getKey() + ": no one-code DequantizeLinear");
            int code = qdq.initializerInts(dq.getInput(0))[0], zero = qdq.initializerInts(dq.getInput(2))[0];
            float s = qdq.initializerFloats(dq.getInput(1))[0];
            assertEquals(e.getValue()[0], (code - zero) * s, 0f, e.getKey());
        }
        // the float constants they replace are gone: ONNX Runtime warns "Removing initializer ... not used" for each
        // initializer nothing reads (Swin-T's export had 12, GELU's ½, per session)
        for (String c : List.of("minus", "shift", "half")) assertTrue(!qdq.isInitializer(c), c + " left in the model");
        assertEquals(qdq.graph(), QdqExporter.withoutUnusedInitializers(qdq.graph()), "no unused initializer");
        // the [1, 1, 1, 1] constant keeps its shape
        NodeProto halve = qdq.node("halve");
        assertEquals(4, qdq.shape(qdq.producer(halve.getInput(1)).getInput(0)).length);

        // ONNX Runtime: QLinearMul × 2, QLinearAdd × 1, and the only float Mul is the graph input's
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("c.onnx"));
        assertEquals(2L, ops.getOrDefault("com.microsoft:QLinearMul", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault("com.microsoft:QLinearAdd", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault(":Mul", 0L), ops.toString());
        assertEquals(0L, ops.getOrDefault(":Add", 0L) + ops.getOrDefault(":DequantizeLinear", 0L), ops.toString());

        // the integer kernels compute the operators' definitions (7-bit weights: exact on every CPU)
        float[] defined = StemPaddingTest.run(qdq, x, OptLevel.NO_OPT), fused = StemPaddingTest.run(qdq, x, OptLevel.ALL_OPT);
        double err = TestModels.relativeError(fused, defined);
        assertTrue(err < 0.01, "fused against operator by operator: relative error " + err);
        double q = TestModels.relativeError(fused, StemPaddingTest.run(m, x, OptLevel.NO_OPT));
        assertTrue(q < 0.05, "quantized against FP32: relative error " + q);
    }
}
