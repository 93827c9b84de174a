package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A captured tensor whose size changes between runs of inputs of the same shape (a detector's per-image selections)
 * is fetched and copied from then on: each run hands over that run's values.
 */
class DataDependentPinnedTest {

    @Test
    void aTensorWhoseShapeTheDataDecideIsHandedOverWithEachRunsSize() {
        var m = TestModels.dataDependentOutputs("kept", "logits");
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded());
             ModelRunner.PinnedBuffers p = r.pinned(List.of("kept", "logits"))) {
            float[] zeros = new float[28 * 28], ramp = new float[28 * 28];
            for (int i = 0; i < ramp.length; i++) ramp[i] = (i % 28) / 7f - 2;
            var a = Map.of("x", new InputTensor("x", ElementType.FLOAT, new long[] {1, 1, 28, 28}, zeros));
            var b = Map.of("x", new InputTensor("x", ElementType.FLOAT, new long[] {1, 1, 28, 28}, ramp));
            float[] ka = r.runInputs(a).get("kept").data(), kb = r.runInputs(b).get("kept").data();
            float[] lb = r.runInputs(b).get("logits").data();
            assertTrue(ka.length != kb.length, "the two images keep different numbers of logits: " + ka.length + ", " + kb.length);
            for (var x : List.of(a, b, a, b)) {
                Map<String, float[]> got = new java.util.HashMap<>();
                r.runPinned(x, p, (n, buf) -> {
                    float[] v = new float[buf.remaining() / 4];
                    buf.asFloatBuffer().get(v);
                    got.put(n, v);
                });
                assertArrayEquals(x == a ? ka : kb, got.get("kept"));
                if (x == b) assertArrayEquals(lb, got.get("logits"), "the pinned tensor beside it");
            }
        }
    }

    @Test
    void anIfWhoseBranchesReturnOtherShapesIsFoundAtRunTime() {
        // y = If(max(x) > 0): then x [2, 4], else Concat(x, x) [4, 4]: nothing static says y's shape follows the data
        onnx.Onnx.GraphProto then = onnx.Onnx.GraphProto.newBuilder().setName("then")
                .addNode(io.quantcal.kernels.onnx.Graphs.node("Identity", "id", List.of("x"), List.of("yt")))
                .addOutput(io.quantcal.kernels.onnx.Graphs.valueOfAnyShape("yt", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        onnx.Onnx.GraphProto otherwise = onnx.Onnx.GraphProto.newBuilder().setName("else")
                .addNode(io.quantcal.kernels.onnx.Graphs.node("Concat", "twice", List.of("x", "x"), List.of("ye"), Map.of("axis", 0L)))
                .addOutput(io.quantcal.kernels.onnx.Graphs.valueOfAnyShape("ye", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        var b = new TestModels.Builder(1);
        b.init("zero", new float[] {0f});
        b.node(io.quantcal.kernels.onnx.Graphs.node("ReduceMax", "mx", List.of("x"), List.of("m"), Map.of("keepdims", 0L)));
        b.node(io.quantcal.kernels.onnx.Graphs.node("Greater", "gt", List.of("m", "zero"), List.of("c")));
        b.node(io.quantcal.kernels.onnx.Graphs.node("If", "branch", List.of("c"), List.of("y"),
                Map.of("then_branch", then, "else_branch", otherwise)));
        b.node(io.quantcal.kernels.onnx.Graphs.node("Relu", "out", List.of("y"), List.of("z")));
        var m = b.build(13, List.of(io.quantcal.kernels.onnx.Graphs.floatValue("x", 2, 4)),
                List.of(io.quantcal.kernels.onnx.Graphs.valueOfAnyShape("z", onnx.Onnx.TensorProto.DataType.FLOAT)));
        float[] pos = {1, 2, 3, 4, 5, 6, 7, 8}, neg = {-1, -2, -3, -4, -5, -6, -7, -8};
        try (ModelRunner r = ModelRunner.open(m, List.of("y"), RunnerOptions.singleThreaded());
             ModelRunner.PinnedBuffers p = r.pinned(List.of("y"))) {
            for (float[] x : List.of(pos, neg, pos, neg)) {
                float[][] got = new float[1][];
                r.runPinned(Map.of("x", new InputTensor("x", ElementType.FLOAT, new long[] {2, 4}, x)), p, (n, buf) -> {
                    got[0] = new float[buf.remaining() / 4];
                    buf.asFloatBuffer().get(got[0]);
                });
                float[] want = x == pos ? pos : TestModels.concat(neg, neg);
                assertArrayEquals(want, got[0]);
            }
        }
    }
}
