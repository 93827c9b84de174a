package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

class OpsetUpgradeTest {

    private static OnnxModel model(long opset, NodeProto node) {
        return OnnxModel.parse("old.onnx", Graphs.model(opset, List.of(node), List.of(),
                List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("y"))).toByteArray(), null);
    }

    private static void assertRefused(OnnxModel m, long to, String what) {
        ModelException e = assertThrows(ModelException.class, () -> OpsetUpgrade.check(m, to, "a test"));
        assertTrue(e.getMessage().contains("old.onnx: node n (") && e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void oldFormsAreRefusedOnlyWhenTheRaiseCrossesTheirChange() {
        OnnxModel clip10 = model(10, Graphs.node("Clip", "n", List.of("x"), List.of("y"), Map.of("min", 0.0, "max", 6.0)));
        assertRefused(clip10, 13, "min/max attributes");

        OnnxModel mean13 = model(13, Graphs.node("ReduceMean", "n", List.of("x"), List.of("y"), Map.of("axes", new long[] {1})));
        assertDoesNotThrow(() -> OpsetUpgrade.check(mean13, 17, "a test"));
        assertRefused(mean13, 21, "axes attribute");

        OnnxModel split13 = OnnxModel.parse("old.onnx", Graphs.model(13,
                List.of(Graphs.node("Split", "n", List.of("x"), List.of("a", "b"), Map.of("axis", 1L))), List.of(),
                List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("a"), Graphs.floatValue("b"))).toByteArray(), null);
        assertRefused(split13, 21, "num_outputs");

        OnnxModel relu10 = model(10, Graphs.node("Relu", "n", List.of("x"), List.of("y")));
        assertDoesNotThrow(() -> OpsetUpgrade.check(relu10, 21, "a test"));
    }

    private static float[] run(OnnxModel m, float[] x, String output) {
        try (io.quantcal.kernels.runtime.ModelRunner r = io.quantcal.kernels.runtime.ModelRunner.open(m, List.of(),
                io.quantcal.kernels.runtime.RunnerOptions.singleThreaded())) {
            return r.run(io.quantcal.kernels.runtime.FloatTensor.of("x", x, 2, 4)).get(output).data();
        }
    }

    @Test
    void reduceAxesAndAnEvenSplitAreRewrittenForOpset18AndComputeTheSame() {
        // a LayerNorm as exporters decompose it reads ReduceMean(axes=[-1]); raising 13 → 21 (16-bit Q/DQ) moves
        // the axes into an input, and an even Split gets num_outputs, as the ONNX version converter does
        float[] x = {1, 2, 3, 4, -1, 0.5f, 8, 2};
        OnnxModel mean13 = model(13, Graphs.node("ReduceMean", "n", List.of("x"), List.of("y"), Map.of("axes", new long[] {-1})));
        OnnxModel mean21 = OpsetUpgrade.rewrite(mean13, 21).withOpset(21);
        assertDoesNotThrow(() -> OpsetUpgrade.check(OpsetUpgrade.rewrite(mean13, 21), 21, "a test"));
        org.junit.jupiter.api.Assertions.assertEquals(2, mean21.node("n").getInputCount());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {2.5f, 2.375f}, run(mean21, x, "y"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(run(mean13, x, "y"), run(mean21, x, "y"));

        OnnxModel split13 = OnnxModel.parse("old.onnx", Graphs.model(13,
                List.of(Graphs.node("Split", "n", List.of("x"), List.of("a", "b"), Map.of("axis", 1L))), List.of(),
                List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("a"), Graphs.floatValue("b"))).toByteArray(), null);
        OnnxModel split21 = OpsetUpgrade.rewrite(split13, 21).withOpset(21);
        org.junit.jupiter.api.Assertions.assertEquals(2L, Nodes.intAttr(split21.node("n"), "num_outputs", 0));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {3, 4, 8, 2}, run(split21, x, "b"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(run(split13, x, "b"), run(split21, x, "b"));
    }

    @Test
    void gridSampleModesAreRenamedForOpset20AndTheCheckThenAccepts() {
        for (String[] m : new String[][] {{"bilinear", "linear"}, {"bicubic", "cubic"}, {"nearest", "nearest"}}) {
            OnnxModel g16 = OnnxModel.parse("old.onnx", Graphs.model(16,
                    List.of(Graphs.node("GridSample", "n", List.of("x", "g"), List.of("y"), Map.of("mode", m[0]))), List.of(),
                    List.of(Graphs.floatValue("x", 1, 1, 2, 2), Graphs.floatValue("g", 1, 2, 2, 2)),
                    List.of(Graphs.floatValue("y"))).toByteArray(), null);
            OnnxModel g21 = OpsetUpgrade.rewrite(g16, 21);
            org.junit.jupiter.api.Assertions.assertEquals(m[1], Nodes.stringAttr(g21.node("n"), "mode", "?"));
            assertDoesNotThrow(() -> OpsetUpgrade.check(g21, 21, "a test"));
        }
    }
}
