package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.runtime.FloatTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

/** {@link PadFolding}: explicit Pads that the next op does itself. */
class PadFoldingTest {

    /**
     * conv (pads 1) → relu → Pad(pads) → reader → GlobalAveragePool → Flatten → fc. The reader is a Conv ("conv"),
     * an AveragePool 2×2/2 ("avg", with {@code avgAttrs}) or a MaxPool ("max"). Pads as an input (opset 13) or as an
     * attribute (opset 10); {@code value} the constant (null: none given).
     */
    static OnnxModel model(String reader, long[] pads, Float value, Map<String, Object> avgAttrs, int opset) {
        TestModels.Builder b = new TestModels.Builder(4);
        b.conv("conv0", "x", "c", 3, 8, 3, 1, 1, 1, true).relu("relu", "c", "r");
        List<String> in = new ArrayList<>(List.of("r"));
        Map<String, Object> attrs = new java.util.HashMap<>(Map.of("mode", "constant"));
        if (opset >= 11) {
            in.add("pads");
            if (value != null) in.add("value");
        } else {
            attrs.put("pads", pads);
            if (value != null) attrs.put("value", value.doubleValue());
        }
        b.node(Graphs.node("Pad", "pad", in, List.of("p"), attrs));
        switch (reader) {
            case "conv" -> b.conv("conv1", "p", "q", 8, 8, 3, 1, 2, 1, true);
            case "avg" -> {
                Map<String, Object> a = new java.util.HashMap<>(Map.of("kernel_shape", new long[] {2, 2}, "strides", new long[] {2, 2}));
                a.putAll(avgAttrs);
                b.node(Graphs.node("AveragePool", "pool", List.of("p"), List.of("q"), a));
            }
            default -> b.node(Graphs.node("MaxPool", "pool", List.of("p"), List.of("q"),
                    Map.of("kernel_shape", new long[] {2, 2}, "strides", new long[] {2, 2})));
        }
        b.node(Graphs.node("GlobalAveragePool", "gap", List.of("q"), List.of("g")));
        b.node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc", "f", "logits", 8, 5, true, true);
        ModelProto.Builder mp = b.model(opset, List.of(Graphs.floatValue("x", -1, 3, 9, 9)),
                List.of(Graphs.floatValue("logits", -1, 5))).toBuilder();
        if (opset >= 11) {
            mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("pads", pads, pads.length));
            if (value != null) mp.getGraphBuilder().addInitializer(Graphs.floatTensor("value", new float[] {value}));
        }
        return OnnxModel.parse("pad.onnx", mp.build().toByteArray(), null);
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.gaussian(new Random(5), 2 * 3 * 81, 1.0), 2, 3, 9, 9);
    }

    private static float[] run(OnnxModel m) {
        return StemPaddingTest.run(m, input(), OrtSession.SessionOptions.OptLevel.NO_OPT);
    }

    private static long pads(OnnxModel m) {
        return m.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count();
    }

    @Test
    void aPadOfZerosIsTheIdentityAndGoes() {
        // torch.onnx's Pad before AvgPool2d: all eight pads zero (and, as torch writes it, a constant mode)
        for (int opset : new int[] {10, 13}) {
            OnnxModel m = model("avg", new long[8], null, Map.of(), opset);
            PadFolding.Result r = PadFolding.rewrite(m);
            assertEquals(List.of("pad"), r.removed(), "opset " + opset);
            assertEquals(List.of(), r.folded());
            assertEquals(0, pads(r.model()));
            NodeProto pool = r.model().node("pool");
            assertEquals("r", pool.getInput(0));
            assertArrayEquals(run(m), run(r.model()), "opset " + opset);
            // the pads constant goes with its Pad
            assertEquals(false, r.model().isInitializer("pads"));
        }
    }

    @Test
    void padsOfNothingInARowAllGoAndAFoldedPadAfterThemReadsTheirInput() {
        // relu → Pad 0 → Pad 0 → Pad (spatial) → conv1: both Pads of nothing go, the third joins conv1
        TestModels.Builder b = new TestModels.Builder(4);
        b.conv("conv0", "x", "c", 3, 8, 3, 1, 1, 1, true).relu("relu", "c", "r");
        b.node(Graphs.node("Pad", "pad_a", List.of("r", "zeros"), List.of("pa"), Map.of("mode", "constant")));
        b.node(Graphs.node("Pad", "pad_b", List.of("pa", "zeros"), List.of("pb"), Map.of("mode", "constant")));
        b.node(Graphs.node("Pad", "pad", List.of("pb", "pads"), List.of("p"), Map.of("mode", "constant")));
        b.conv("conv1", "p", "q", 8, 8, 3, 1, 2, 0, true);
        b.node(Graphs.node("GlobalAveragePool", "gap", List.of("q"), List.of("g")));
        b.node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc", "f", "logits", 8, 5, true, true);
        ModelProto.Builder mp = b.model(13, List.of(Graphs.floatValue("x", -1, 3, 9, 9)),
                List.of(Graphs.floatValue("logits", -1, 5))).toBuilder();
        mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("zeros", new long[8], 8))
                .addInitializer(Graphs.int64Tensor("pads", new long[] {0, 0, 1, 1, 0, 0, 1, 1}, 8));
        OnnxModel m = OnnxModel.parse("chain.onnx", mp.build().toByteArray(), null);
        PadFolding.Result r = PadFolding.rewrite(m);
        assertEquals(List.of("pad_a", "pad_b"), r.removed());
        assertEquals(List.of("pad"), r.folded());
        assertEquals(0, pads(r.model()));
        assertEquals("r", r.model().node("conv1").getInput(0));
        assertArrayEquals(run(m), run(r.model()));
    }

    @Test
    void spatialZeroPaddingJoinsTheConvOrAveragePoolThatReadsIt() {
        // top 1, left 2, bottom 0, right 1 on H, W; Conv's own pads 1 become 2, 3, 1, 2
        long[] pads = {0, 0, 1, 2, 0, 0, 0, 1};
        for (Float value : new Float[] {null, 0f}) {
            OnnxModel m = model("conv", pads, value, Map.of(), 13);
            PadFolding.Result r = PadFolding.rewrite(m);
            assertEquals(List.of("pad"), r.folded());
            assertEquals(0, pads(r.model()));
            NodeProto conv = r.model().node("conv1");
            assertEquals("r", conv.getInput(0));
            assertArrayEquals(new long[] {2, 3, 1, 2}, Nodes.intsAttr(conv, "pads"));
            assertArrayEquals(run(m), run(r.model()));
        }
        // opset 10: pads and value as attributes
        OnnxModel old = model("conv", pads, 0f, Map.of(), 10);
        PadFolding.Result ro = PadFolding.rewrite(old);
        assertEquals(List.of("pad"), ro.folded());
        assertArrayEquals(run(old), run(ro.model()));
        // an AveragePool counts the padded zeros only with count_include_pad = 1: set where its own pads are zero
        pads = new long[] {0, 0, 1, 0, 0, 0, 0, 1};
        for (Map<String, Object> attrs : List.of(Map.<String, Object>of(), Map.<String, Object>of("count_include_pad", 0L),
                Map.<String, Object>of("count_include_pad", 1L, "pads", new long[] {0, 1, 1, 0}))) {
            OnnxModel m = model("avg", pads, null, attrs, 13);
            PadFolding.Result r = PadFolding.rewrite(m);
            assertEquals(List.of("pad"), r.folded(), attrs.toString());
            NodeProto pool = r.model().node("pool");
            assertEquals(1, Nodes.intAttr(pool, "count_include_pad", 0));
            assertArrayEquals(run(m), run(r.model()), attrs.toString());
        }
    }

    @Test
    void padsThatTheReaderCannotDoStay() {
        long[] pads = {0, 0, 1, 1, 0, 0, 1, 1};
        List<OnnxModel> kept = List.of(
                model("conv", pads, 1f, Map.of(), 13),                                   // not zeros
                model("conv", new long[] {0, 1, 0, 0, 0, 0, 0, 0}, null, Map.of(), 13),   // the channel axis
                model("conv", new long[] {0, 0, -1, 0, 0, 0, 0, 0}, null, Map.of(), 13),  // a crop
                model("max", pads, null, Map.of(), 13),                                   // MaxPool ignores its pads
                // count_include_pad 0 with pads of its own: the divisor would change
                model("avg", pads, null, Map.of("count_include_pad", 0L, "pads", new long[] {1, 1, 1, 1}), 13),
                model("avg", pads, null, Map.of("ceil_mode", 1L), 13),
                // two zeros before a 2-wide window: ONNX Runtime's pooling refuses pads as wide as the window
                model("avg", new long[] {0, 0, 2, 0, 0, 0, 0, 0}, null, Map.of(), 13));
        for (OnnxModel m : kept) {
            PadFolding.Result r = PadFolding.rewrite(m);
            assertEquals(List.of(), r.folded());
            assertEquals(List.of(), r.removed());
            assertSame(m, r.model());
        }
        // zero pads are the identity before any reader
        OnnxModel max = model("max", new long[8], null, Map.of(), 13);
        PadFolding.Result r = PadFolding.rewrite(max);
        assertEquals(List.of("pad"), r.removed());
        assertArrayEquals(run(max), run(r.model()));
    }
}
