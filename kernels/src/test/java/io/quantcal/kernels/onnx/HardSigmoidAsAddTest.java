package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link HardSigmoidAsAdd}: MobileNetV3's hard-swish and squeeze-excitation gate as torch exports them below opset 14. */
class HardSigmoidAsAddTest {

    @TempDir
    Path tmp;

    /** conv1 → x·HardSigmoid(x) → SE gate (GAP → 1×1 conv → HardSigmoid) · → conv2 → GAP → flatten → fc. */
    static OnnxModel hardSwishBlock() {
        TestModels.Builder b = new TestModels.Builder(17);
        Map<String, Object> torch = Map.of("alpha", 1.0 / 6, "beta", 0.5);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true);
        b.node(Graphs.node("HardSigmoid", "hsig1", List.of("c1"), List.of("h1"), torch));
        b.node(Graphs.node("Mul", "hswish", List.of("c1", "h1"), List.of("a1")));
        b.node(Graphs.node("GlobalAveragePool", "se_pool", List.of("a1"), List.of("p")));
        b.conv("se_fc", "p", "s", 8, 8, 1, 1, 1, 0, true);
        b.node(Graphs.node("HardSigmoid", "se_gate", List.of("s"), List.of("gate"), torch));
        b.node(Graphs.node("Mul", "se_scale", List.of("a1", "gate"), List.of("a2")));
        b.conv("conv2", "a2", "c2", 8, 8, 3, 1, 1, 1, true);
        b.classifier("c2", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.gaussian(new Random(2), 8 * 4 * 64, 3.0), 8, 4, 8, 8);
    }

    static float[] run(OnnxModel m, FloatTensor x, String out, OptLevel level) {
        try (ModelRunner r = ModelRunner.open(m, List.of(out), new RunnerOptions(1, 1, level))) {
            return r.run(x).get(out).data();
        }
    }

    @Test
    void theGateBecomesAnIntegerAddWithTheSameCodes() throws Exception {
        OnnxModel m = hardSwishBlock();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = input();
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, x);
        // the gates' rows: zero point 0 (they reach 0), grid top at most 1
        for (String g : List.of("h1", "gate")) {
            assertEquals(0, a.get(g).zeroPoint(0), g);
            assertTrue(a.get(g).scale(0) * 254.5 <= 1.0, g + " " + a.get(g));
        }
        Map<String, QuantParams> w = StemPaddingTest.weights(m, true, 7);
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        OnnxModel rewritten = HardSigmoidAsAdd.rewrite(plain);
        assertEquals(0, QdqExporter.export(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p).nodes().stream()
                .filter(n -> n.getOpType().equals("HardSigmoid")).count(), "the ort export applies the rule");
        assertEquals(0, rewritten.nodes().stream().filter(n -> n.getOpType().equals("HardSigmoid")).count());
        assertEquals("Add", rewritten.node("hsig1").getOpType());
        // the QuantizeLinear of h1 reads x + β/α = x + 3 at s/α = 6s; its DequantizeLinear still reads s
        var q = rewritten.consumers("h1").get(0);
        assertEquals("QuantizeLinear", q.getOpType());
        assertEquals(6 * a.get("h1").scale(0), rewritten.initializerFloats(q.getInput(1))[0], 1e-9);
        var offset = rewritten.producer(rewritten.node("hsig1").getInput(1));
        assertEquals(3.0f, rewritten.initializerFloats(offset.getInput(1))[0] * (rewritten.initializerInts(offset.getInput(0))[0]
                - rewritten.initializerInts(offset.getInput(2))[0]), 0f);

        // the same codes operator by operator: both gates' dequantized outputs; one code apart only at a real-number
        // rounding tie ((αx + β)/s = k + ½, float32 deciding either way), as at x = 0 where (0 + 3)/(6/255) = 127.5
        for (String g : List.of("h1", "gate")) {
            String dq = rewritten.consumers(rewritten.consumers(g).get(0).getOutput(0)).get(0).getOutput(0);
            String in = plain.node(g.equals("h1") ? "hsig1" : "se_gate").getInput(0);
            float[] before = run(plain, x, dq, OptLevel.NO_OPT), after = run(rewritten, x, dq, OptLevel.NO_OPT);
            float[] xs = run(plain, x, in, OptLevel.NO_OPT);
            double s = a.get(g).scale(0);
            int differ = 0;
            for (int i = 0; i < before.length; i++) {
                if (before[i] == after[i]) continue;
                differ++;
                assertEquals(before[i], after[i], s * 1.001, g + " differs by more than one code at " + i);
                double v = (xs[i] / 6.0 + 0.5) / s;
                assertEquals(0.5, v - Math.floor(v), 1e-4, g + " differs at " + i + " away from a tie: x = " + xs[i]);
            }
            assertTrue(before.length >= 64);
            assertTrue(differ < before.length / 10, g + ": " + differ + " of " + before.length + " codes differ");
        }
        // ONNX Runtime: the float HardSigmoids (and their Q/DQ) become QLinearAdds
        Map<String, Long> opsBefore = TestModels.optimizedOps(plain, tmp.resolve("plain.onnx"));
        Map<String, Long> opsAfter = TestModels.optimizedOps(rewritten, tmp.resolve("rewritten.onnx"));
        assertEquals(2L, opsBefore.getOrDefault(":HardSigmoid", 0L), opsBefore.toString());
        assertEquals(0L, opsAfter.getOrDefault(":HardSigmoid", 0L), opsAfter.toString());
        assertEquals(2L, opsAfter.getOrDefault("com.microsoft:QLinearAdd", 0L), opsAfter.toString());
        assertEquals(1L, opsAfter.getOrDefault(":QuantizeLinear", 0L), opsAfter.toString());
        double err = TestModels.relativeError(run(rewritten, x, "logits", OptLevel.ALL_OPT), run(plain, x, "logits", OptLevel.ALL_OPT));
        assertTrue(err < 0.01, "integer kernels, relative error " + err);
    }

    @Test
    void aGridThatDoesNotClipAsHardSigmoidDoesKeepsItInFloat() {
        OnnxModel m = hardSwishBlock();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a = new LinkedHashMap<>(QdqPlacementTest.calibrate(m, p, input()));
        Map<String, QuantParams> w = StemPaddingTest.weights(m, true, 7);
        QuantGrid u8 = QuantGrid.of(8, false);
        // h1: a grid up to 2.0 (values between 1 and 2 representable, which HardSigmoid never gives);
        // gate: zero point 10 (codes below it would stand for negative values, which HardSigmoid never gives)
        a.put("h1", QuantParams.perTensor(u8, false, 2.0 / 255, 0));
        a.put("gate", QuantParams.perTensor(u8, false, 1.0 / 245, 10));
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals(plain, HardSigmoidAsAdd.rewrite(plain));
        // the edge: 1.0 rounds to the top code when s · 254.5 < 1; at s = 1/254.5 it is a tie that rounds to even
        // (254), below the top, which values above 1 would reach
        a.put("gate", QuantParams.perTensor(u8, false, 1.0 / 254.6, 0));
        a.put("h1", QuantParams.perTensor(u8, false, 1.0 / 254.5, 0));
        OnnxModel edge = HardSigmoidAsAdd.rewrite(QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p));
        assertEquals("Add", edge.node("se_gate").getOpType());
        assertEquals("HardSigmoid", edge.node("hsig1").getOpType());
    }
}
