package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link SpatialMeanAsPool}: torch's {@code x.mean([2, 3])} as the GlobalAveragePool it computes. */
class SpatialMeanAsPoolTest {

    @TempDir
    Path tmp;

    /** conv → relu → ReduceMean(axes, keepdims) [→ Flatten] → fc; axes as an attribute or (opset 18) an input. */
    static OnnxModel model(long[] axes, long keepdims, int opset) {
        TestModels.Builder b = new TestModels.Builder(3);
        b.conv("conv", "x", "c", 4, 8, 3, 1, 1, 1, true).relu("relu", "c", "r");
        if (opset >= 18) {
            b.node(Graphs.node("ReduceMean", "mean", List.of("r", "axes"), List.of("m"), Map.of("keepdims", keepdims)));
        } else {
            b.node(Graphs.node("ReduceMean", "mean", List.of("r"), List.of("m"), Map.of("axes", axes, "keepdims", keepdims)));
        }
        String f = "m";
        if (keepdims != 0) {
            b.node(Graphs.node("Flatten", "flatten", List.of("m"), List.of("f"), Map.of("axis", 1L)));
            f = "f";
        }
        b.gemm("fc", f, "logits", 8, 5, true, true);
        ModelProto.Builder mp = b.model(opset, List.of(Graphs.floatValue("x", -1, 4, 6, 6)),
                List.of(Graphs.floatValue("logits", -1, 5))).toBuilder();
        if (opset >= 18) mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("axes", axes, axes.length));
        return OnnxModel.parse("mean.onnx", mp.build().toByteArray(), null);
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.gaussian(new Random(8), 3 * 4 * 36, 1.0), 3, 4, 6, 6);
    }

    @Test
    void aMeanOverHeightAndWidthIsTheGlobalAveragePoolItComputes() throws Exception {
        for (int opset : new int[] {13, 18}) {
            for (long keep : new long[] {0, 1}) {
                OnnxModel m = model(new long[] {2, 3}, keep, opset);
                SpatialMeanAsPool.Result r = SpatialMeanAsPool.rewrite(m);
                assertEquals(List.of("mean"), r.rewritten(), "opset " + opset + ", keepdims " + keep);
                OnnxModel p = r.model();
                assertEquals("GlobalAveragePool", p.node("mean").getOpType());
                assertEquals(0, p.nodes().stream().filter(n -> n.getOpType().equals("ReduceMean")).count());
                // keepdims 0: [N, C, 1, 1] flattened to the [N, C] the ReduceMean gave, under its output's name
                NodeProto reader = p.consumers(p.node("mean").getOutput(0)).get(0);
                assertEquals("Flatten", reader.getOpType());
                if (keep == 0) assertEquals("m", reader.getOutput(0));
                FloatTensor x = input();
                double err = TestModels.relativeError(StemPaddingTest.run(p, x, OrtSession.SessionOptions.OptLevel.NO_OPT),
                        StemPaddingTest.run(m, x, OrtSession.SessionOptions.OptLevel.NO_OPT));
                assertTrue(err < 1e-6, "relative error " + err);
            }
        }
        // negative axes name the same two
        assertEquals(List.of("mean"), SpatialMeanAsPool.rewrite(model(new long[] {-1, -2}, 0, 13)).rewritten());
    }

    @Test
    void otherMeansAreLeftAlone() {
        // over the channels and height, over one axis
        for (long[] axes : List.of(new long[] {1, 2}, new long[] {3})) {
            OnnxModel m = model(axes, 1, 13);
            SpatialMeanAsPool.Result r = SpatialMeanAsPool.rewrite(m);
            assertEquals(List.of(), r.rewritten());
            assertSame(m, r.model());
        }
        // axes {2, 3} of a tensor whose rank nothing gives
        TestModels.Builder b = new TestModels.Builder(3);
        b.node(Graphs.node("ReduceMean", "mean", List.of("x"), List.of("m"), Map.of("axes", new long[] {2, 3})));
        OnnxModel unknown = b.build(13, List.of(Graphs.valueOfAnyShape("x", onnx.Onnx.TensorProto.DataType.FLOAT)),
                List.of(Graphs.valueOfAnyShape("m", onnx.Onnx.TensorProto.DataType.FLOAT)));
        assertEquals(List.of(), SpatialMeanAsPool.rewrite(unknown).rewritten());
    }

    @Test
    void theOrtProfileThenRunsItOnIntegers() throws Exception {
        OnnxModel m = SpatialMeanAsPool.rewrite(model(new long[] {2, 3}, 0, 13)).model();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = input();
        OnnxModel qdq = QdqExporter.export(m, QdqPlacementTest.calibrate(m, p, x), StemPaddingTest.weights(m, true, 7),
                Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("mean.onnx"));
        assertEquals(1L, ops.getOrDefault("com.microsoft:QLinearGlobalAveragePool", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault(":QuantizeLinear", 0L), ops.toString());
        assertEquals(0L, ops.getOrDefault(":ReduceMean", 0L) + ops.getOrDefault(":GlobalAveragePool", 0L), ops.toString());
    }
}
