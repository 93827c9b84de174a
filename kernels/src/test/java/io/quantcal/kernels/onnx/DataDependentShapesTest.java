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
        Map<String, String> outputs = new java.util.HashMap<>();
        for (String o : List.of("logits", "kept", "labels")) if (all.containsKey(o)) outputs.put(o, all.get(o));
        assertEquals(Map.of("kept", "NonZero node 'nz'"), outputs);
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
        // k from the input's shape (half its width): a function of the input shapes, not of the data
        b.initializers.add(Graphs.int64Tensor("one", new long[] {1}, 1));
        b.initializers.add(Graphs.int64Tensor("two", new long[] {2}, 1));
        b.node(Graphs.node("Gather", "width", List.of("s", "one"), List.of("w")));
        b.node(Graphs.node("Div", "half", List.of("w", "two"), List.of("kh")));
        b.node(Graphs.node("TopK", "shaped", List.of("x", "kh"), List.of("vh", "ih")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 10)), List.of(Graphs.floatValue("v3", -1, 3),
                Graphs.floatValue("vk", -1, -1), Graphs.floatValue("vh", -1, -1)));
        Map<String, String> all = DataDependentShapes.of(m);
        assertEquals(null, all.get("v3"));
        assertEquals(null, all.get("vh"));
        assertEquals("TopK node 'computed'", all.get("vk"));
        assertEquals("TopK node 'computed'", all.get("ik"));
    }

    @Test
    void aTopKWhoseKIsTheSizeOfADataDependentTensorIsDataDependent() {
        // k = Shape(NonZero(x > 0))[1]: the number of positive values, which the data decide
        TestModels.Builder b = new TestModels.Builder(2);
        b.init("zero", new float[] {0f});
        b.initializers.add(Graphs.int64Tensor("one", new long[] {1}, 1));
        b.node(Graphs.node("Greater", "pos", List.of("x", "zero"), List.of("p")));
        b.node(Graphs.node("NonZero", "nz", List.of("p"), List.of("idx")));
        b.node(Graphs.node("Shape", "count", List.of("idx"), List.of("s")));
        b.node(Graphs.node("Gather", "k", List.of("s", "one"), List.of("k")));
        b.node(Graphs.node("Flatten", "flat", List.of("x"), List.of("xf"), Map.of("axis", 0L)));
        b.node(Graphs.node("TopK", "top", List.of("xf", "k"), List.of("v", "i")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 2, 5)), List.of(Graphs.floatValue("v", 1, -1)));
        assertEquals("TopK node 'top'", DataDependentShapes.of(m).get("v"));
        assertEquals(null, DataDependentShapes.of(m).get("xf"));
    }
}
