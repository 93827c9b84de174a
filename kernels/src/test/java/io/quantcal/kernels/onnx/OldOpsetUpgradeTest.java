package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

/**
 * Opsets 7..9 raised to 10 with the version converter's rules; the upgraded model gives the same outputs in ONNX
 * Runtime as the original one (which ONNX Runtime still runs at its own opset).
 */
class OldOpsetUpgradeTest {

    static ModelProto oldModel(long opset) {
        Random r = new Random(5);
        List<NodeProto> nodes = new java.util.ArrayList<>();
        nodes.add(Graphs.node("BatchNormalization", "bn", List.of("x", "g", "b", "mean", "var"), List.of("n"),
                opset < 9 ? Map.of("spatial", 1L, "epsilon", 1e-5f) : Map.of("epsilon", 1e-5f)));
        if (opset < 9) {
            nodes.add(Graphs.node("Upsample", "up", List.of("n"), List.of("u"),
                    Map.of("scales", new float[] {1, 1, 2, 2}, "mode", "nearest")));
        } else {
            nodes.add(Graphs.node("Upsample", "up", List.of("n", "sc"), List.of("u"), Map.of("mode", "nearest")));
        }
        nodes.add(Graphs.node("Slice", "sl", List.of("u"), List.of("s"),
                Map.of("starts", new long[] {1, 1}, "ends", new long[] {7, 6}, "axes", new long[] {2, 3})));
        nodes.add(Graphs.node("Flatten", "fl", List.of("s"), List.of("f")));
        nodes.add(Graphs.node("TopK", "top", List.of("f"), List.of("y", "i"), Map.of("k", 5L, "axis", 1L)));
        List<onnx.Onnx.TensorProto> init = new java.util.ArrayList<>(List.of(
                Graphs.floatTensor("g", TestModels.uniform(r, 2, 0.5, 1.5), 2), Graphs.floatTensor("b", TestModels.gaussian(r, 2, 0.3), 2),
                Graphs.floatTensor("mean", TestModels.gaussian(r, 2, 0.3), 2), Graphs.floatTensor("var", TestModels.uniform(r, 2, 0.5, 2), 2)));
        if (opset >= 9) init.add(Graphs.floatTensor("sc", new float[] {1, 1, 2, 2}, 4));
        return Graphs.model(opset, nodes, init, List.of(Graphs.floatValue("x", 1, 2, 4, 4)),
                List.of(Graphs.floatValue("y", 1, 5)));
    }

    static float[] ort(byte[] model, float[] x) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(model, new OrtSession.SessionOptions());
             OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[] {1, 2, 4, 4});
             OrtSession.Result r = s.run(Map.of("x", t))) {
            float[][] y = (float[][]) r.get(0).getValue();
            return y[0];
        }
    }

    @Test
    void opsetsSevenToNineBecomeTenWithTheSameOutputs() throws Exception {
        float[] x = TestModels.gaussian(new Random(2), 32, 1.0);
        for (long opset : new long[] {7, 8, 9}) {
            ModelProto old = oldModel(opset);
            OnnxModel m = OnnxModel.parse("old.onnx", old.toByteArray(), null);
            assertEquals(10, m.opset());
            assertEquals(opset, m.upgradedFrom());
            assertEquals("Resize", m.node("up").getOpType());
            assertEquals(4, m.node("sl").getInputCount(), "Slice-10 takes data, starts, ends, axes as inputs");
            assertEquals(2, m.node("top").getInputCount(), "TopK-10 takes k as an input");
            assertArrayEquals(ort(old.toByteArray(), x), ort(m.toByteArray(), x), "opset " + opset);
        }
    }

    @Test
    void aFormWithoutAnOpsetTenEquivalentIsNamed() {
        ModelProto old = oldModel(8);
        ModelProto.Builder b = old.toBuilder();
        b.getGraphBuilder().setNode(0, b.getGraph().getNode(0).toBuilder().clearAttribute()
                .addAttribute(Graphs.attribute("spatial", 0L)));
        ModelException e = assertThrows(ModelException.class, () -> OnnxModel.parse("old.onnx", b.build().toByteArray(), null));
        assertTrue(e.getMessage().contains("BatchNormalization") && e.getMessage().contains("spatial = 0"), e.getMessage());
    }
}
