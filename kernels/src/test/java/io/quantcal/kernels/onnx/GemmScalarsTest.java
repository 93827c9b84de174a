package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

/**
 * Gemm with α ≠ 1 or β ≠ 1 (torch's addmm with alpha/beta): before, quantcal stopped on it; the scalars now go into
 * copies of its weight and bias, and ONNX Runtime computes the same outputs (bit for bit for powers of two).
 */
class GemmScalarsTest {

    static OnnxModel gemm(double alpha, double beta, boolean transB) {
        Random r = new Random(7);
        Map<String, Object> attrs = new java.util.HashMap<>(Map.of("alpha", alpha, "beta", beta));
        if (transB) attrs.put("transB", 1L);
        List<NodeProto> nodes = List.of(Graphs.node("Gemm", "fc", List.of("x", "w", "b"), List.of("y"), attrs),
                Graphs.node("Relu", "relu", List.of("y"), List.of("z")));
        long[] ws = transB ? new long[] {5, 6} : new long[] {6, 5};
        return OnnxModel.parse("gemm.onnx", Graphs.model(13, nodes,
                List.of(Graphs.floatTensor("w", TestModels.gaussian(r, 30, 0.5), ws),
                        Graphs.floatTensor("b", TestModels.gaussian(r, 5, 0.5), 5)),
                List.of(Graphs.floatValue("x", 3, 6)), List.of(Graphs.floatValue("z", 3, 5))).toByteArray(), null);
    }

    static float[] run(OnnxModel m, FloatTensor x) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(x).get("z").data();
        }
    }

    @Test
    void theScalarsGoIntoTheConstantsAndTheGemmIsQuantizable() {
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(3), 18, 1.0), 3, 6);
        for (boolean transB : new boolean[] {false, true}) {
            OnnxModel m = gemm(0.5, 2.0, transB);
            assertThrows(ModelException.class, m::quantizableNodes, "alpha 0.5 stopped the run before");
            GemmScalars.Result g = GemmScalars.rewrite(m);
            assertEquals(List.of("fc"), g.rewritten());
            NodeProto fc = g.model().node("fc");
            assertFalse(Nodes.has(fc, "alpha") || Nodes.has(fc, "beta"));
            assertEquals(1, g.model().quantizableNodes().size());
            assertFalse(g.model().isInitializer("w"), "the unscaled weight is read by nothing any more");
            float[] w = m.initializerFloats("w"), w2 = g.model().initializerFloats(fc.getInput(1));
            for (int i = 0; i < w.length; i++) assertEquals(0.5f * w[i], w2[i], 0f);
            // powers of two scale exactly: ONNX Runtime's outputs bit for bit
            assertArrayEquals(run(m, x), run(g.model(), x), "transB " + transB);
        }
        // other scalars: the same function within float rounding; beta 0 drops C
        OnnxModel m = gemm(0.3, 0.0, false);
        GemmScalars.Result g = GemmScalars.rewrite(m);
        assertEquals(2, g.model().node("fc").getInputCount());
        assertFalse(g.model().isInitializer("b"));
        float[] a = run(m, x), b = run(g.model(), x);
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-6 * Math.max(1, Math.abs(a[i])), "z[" + i + "]");
    }

    @Test
    void transposedInputIsTransposedByANodeAndTheGemmIsQuantizable() {
        Random r = new Random(11);
        // Y = alpha * x^T * w^T + b, x [6, 3] (K = 6, M = 3), w [5, 6]
        List<NodeProto> nodes = List.of(Graphs.node("Gemm", "fc", List.of("x", "w", "b"), List.of("y"),
                        Map.of("transA", 1L, "transB", 1L, "alpha", 0.5)),
                Graphs.node("Relu", "relu", List.of("y"), List.of("z")));
        OnnxModel m = OnnxModel.parse("gemm_ta.onnx", Graphs.model(13, nodes,
                List.of(Graphs.floatTensor("w", TestModels.gaussian(r, 30, 0.5), 5, 6),
                        Graphs.floatTensor("b", TestModels.gaussian(r, 5, 0.5), 5)),
                List.of(Graphs.floatValue("x", 6, 3)), List.of(Graphs.floatValue("z", 3, 5))).toByteArray(), null);
        assertThrows(ModelException.class, m::quantizableNodes, "alpha and transA stopped the run before");
        GemmScalars.Result g = GemmScalars.rewrite(m);
        assertEquals(List.of("fc"), g.transposedA());
        assertEquals(List.of("fc"), g.rewritten());
        NodeProto fc = g.model().node("fc");
        assertFalse(Nodes.has(fc, "transA"));
        NodeProto t = g.model().nodes().get(0);
        assertEquals("Transpose", t.getOpType());
        assertEquals("x", t.getInput(0));
        assertEquals(t.getOutput(0), fc.getInput(0));
        assertEquals(1, g.model().quantizableNodes().size());
        assertEquals(t.getOutput(0), g.model().quantizableNodes().get(0).input());
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(5), 18, 1.0), 6, 3);
        float[] a = run(m, x), b = run(g.model(), x);
        // the same products; MLAS may sum a transposed operand in another order: within float rounding
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-6 * Math.max(1, Math.abs(a[i])), "z[" + i + "]");
        // a model without transA is left alone
        assertEquals(List.of(), GemmScalars.rewrite(gemm(1.0, 1.0, false)).transposedA());
    }
}
