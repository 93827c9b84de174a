package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Tensors whose shape depends on the data: from NonZero and the like, and what is computed from them. */
class DataDependentShapesTest {

    @Test
    void nonZeroAndWhatFollowsItAreDataDependentTheRestIsNot() {
        OnnxModel m = TestModels.dataDependentOutputs("logits", "kept", "labels");
        Map<String, String> all = DataDependentShapes.of(m);
        assertEquals("NonZero node 'nz'", all.get("idx"));
        assertEquals("NonZero node 'nz'", all.get("idx_rows"));
        assertEquals("NonZero node 'nz'", all.get("kept"));
        for (String t : List.of("c1", "r", "logits", "above", "labels")) assertEquals(null, all.get(t), t);
        assertEquals(Map.of("kept", "NonZero node 'nz'"), DataDependentShapes.outputs(m, List.of("logits", "kept", "labels")));
    }

    @Test
    void aTopKIsDataDependentOnlyWhenItsKIsComputed() {
        TestModels.Builder b = new TestModels.Builder(1);
        b.initializers.add(Graphs.int64Tensor("k3", new long[] {3}, 1));
        b.node(Graphs.node("TopK", "fixed", List.of("x", "k3"), List.of("v3", "i3")));
        b.node(Graphs.node("Shape", "shape", List.of("x"), List.of("s")));
        b.node(Graphs.node("ReduceMax", "kmax", List.of("x"), List.of("mx"), Map.of("keepdims", 0L)));
        b.node(Graphs.node("Cast", "kcast", List.of("mx"), List.of("kc"), Map.of("to", 7L)));
        b.node(Graphs.node("Unsqueeze", "k1", List.of("kc", "axes0"), List.of("k")));
        b.initializers.add(Graphs.int64Tensor("axes0", new long[] {0}, 1));
        b.node(Graphs.node("TopK", "computed", List.of("x", "k"), List.of("vk", "ik")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 10)), List.of(Graphs.floatValue("v3", -1, 3),
                Graphs.floatValue("vk", -1, -1)));
        Map<String, String> all = DataDependentShapes.of(m);
        assertEquals(null, all.get("v3"));
        assertEquals("TopK node 'computed'", all.get("vk"));
        assertEquals("TopK node 'computed'", all.get("ik"));
    }
}
