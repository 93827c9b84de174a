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

    @Test
    void nodesInsideSubgraphsAreRewrittenAndCheckedToo() {
        // opset 11: If(cond) then Unsqueeze(x, axes=[0]) → [1, 2, 4] else Unsqueeze(x, axes=[1]) → [2, 1, 4]; raised to 13
        // the branches' axes become inputs (torchvision's detection postprocessing has such an If): ONNX Runtime
        // refused the raised model before ("Unsqueeze ... has input size 1 not in range [min=2, max=2]")
        onnx.Onnx.GraphProto then = onnx.Onnx.GraphProto.newBuilder().setName("then")
                .addNode(Graphs.node("Unsqueeze", "u0", List.of("x"), List.of("t"), Map.of("axes", new long[] {0})))
                .addOutput(Graphs.valueOfAnyShape("t", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        onnx.Onnx.GraphProto otherwise = onnx.Onnx.GraphProto.newBuilder().setName("else")
                .addNode(Graphs.node("Unsqueeze", "u1", List.of("x"), List.of("e"), Map.of("axes", new long[] {1})))
                .addOutput(Graphs.valueOfAnyShape("e", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        NodeProto ifNode = Graphs.node("If", "branch", List.of("cond"), List.of("y"), Map.of("then_branch", then,
                "else_branch", otherwise));
        float[] x = {1, 2, 3, 4, 5, 6, 7, 8};
        for (boolean c : new boolean[] {true, false}) {
            onnx.Onnx.TensorProto cond = onnx.Onnx.TensorProto.newBuilder().setName("cond")
                    .setDataType(onnx.Onnx.TensorProto.DataType.BOOL_VALUE).addInt32Data(c ? 1 : 0).build();
            NodeProto constant = Graphs.node("Constant", "c", List.of(), List.of("cond"), Map.of("value", cond));
            OnnxModel m11 = OnnxModel.parse("old.onnx", Graphs.model(11, List.of(constant, ifNode), List.of(),
                    List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.valueOfAnyShape("y",
                            onnx.Onnx.TensorProto.DataType.FLOAT))).toByteArray(), null);
            ModelException e = assertThrows(ModelException.class, () -> OpsetUpgrade.check(m11, 13, "a test"));
            assertTrue(e.getMessage().matches(".*node u[01] \\(Unsqueeze\\) has an axes attribute.*"), e.getMessage());
            OnnxModel m13 = OpsetUpgrade.rewrite(m11, 13).withOpset(13);
            assertDoesNotThrow(() -> OpsetUpgrade.check(m13, 13, "a test"));
            try (io.quantcal.kernels.runtime.ModelRunner r = io.quantcal.kernels.runtime.ModelRunner.open(m13,
                    io.quantcal.kernels.runtime.RunnerOptions.singleThreaded())) {
                var out = r.run(io.quantcal.kernels.runtime.FloatTensor.of("x", x, 2, 4)).get("y");
                org.junit.jupiter.api.Assertions.assertArrayEquals(c ? new long[] {1, 2, 4} : new long[] {2, 1, 4}, out.shape());
                org.junit.jupiter.api.Assertions.assertArrayEquals(x, out.data());
            }
        }
    }
}
