package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/** y = W · x written as (xᵀ · Wᵀ)ᵀ ({@link ConstantFirstMatMul}): the same outputs in ONNX Runtime, W's rows as channels. */
class ConstantFirstMatMulTest {

    /** y = mix · x: mix [4, 6] constant, x [N, 6, 5] (rank 3) or of a shape the model does not declare. */
    static OnnxModel model(boolean rankKnown) {
        TestModels.Builder b = new TestModels.Builder(17);
        b.randomInit("mix", 0.4, 4, 6);
        b.node(Graphs.node("MatMul", "mixing", List.of("mix", "x"), List.of("y")));
        return b.build(13, List.of(rankKnown ? Graphs.floatValue("x", -1, 6, 5) : Graphs.valueOfAnyShape("x",
                TensorProto.DataType.FLOAT)), List.of(Graphs.valueOfAnyShape("y", TensorProto.DataType.FLOAT)));
    }

    private static float[] run(OnnxModel m, float[] x) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(FloatTensor.of("x", x, 3, 6, 5)).get("y").data();
        }
    }

    @Test
    void theMatMulReadsTheTransposedActivationTimesTheTransposedConstantAndComputesTheSame() {
        OnnxModel m = model(true);
        ConstantFirstMatMul.Result r = ConstantFirstMatMul.rewrite(m);
        assertEquals(List.of("mixing"), r.rewritten());
        OnnxModel e = r.model();
        assertEquals(List.of("Transpose", "MatMul", "Transpose"), e.nodes().stream().map(NodeProto::getOpType).toList());
        NodeProto mm = e.node("mixing");
        assertEquals(List.of("x_transposed", "mix_transposed"), mm.getInputList());
        assertTrue(!e.isInitializer("mix"), "the original constant is gone");
        // Wᵀ [6, 4]: element (k, m) is W's (m, k)
        float[] w = m.initializerFloats("mix"), wt = e.initializerFloats("mix_transposed");
        assertEquals(List.of(6L, 4L), e.initializer("mix_transposed").getDimsList());
        for (int i = 0; i < 4; i++) for (int k = 0; k < 6; k++) assertEquals(w[i * 6 + k], wt[k * 4 + i]);
        // a layer quantcal quantizes, per channel along W's rows (the MatMul weight's axis 1)
        QuantizableNode q = QuantizableNodeFinder.find(e).get(0);
        assertEquals("mix_transposed", q.weight());
        assertEquals("x_transposed", q.input());
        assertEquals(1, q.weightAxis());
        // ONNX Runtime: the same products, summed in the GEMM's order
        Random rnd = new Random(5);
        float[] x = new float[3 * 6 * 5];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        float[] before = run(m, x), after = run(e, x);
        assertEquals(before.length, after.length);
        for (int i = 0; i < before.length; i++) assertEquals(before[i], after[i], 1e-5 * (1 + Math.abs(before[i])), "at " + i);
        // by hand, one element: y[1, 2, 3] = Σ_k W[2, k] x[1, k, 3]
        double y = 0;
        for (int k = 0; k < 6; k++) y += w[2 * 6 + k] * x[30 + k * 5 + 3];
        assertEquals(y, after[20 + 2 * 5 + 3], 1e-5);
    }

    @Test
    void anActivationOfUnknownRankOrAnExcludedNodeIsLeftAsItIs() {
        OnnxModel unknown = model(false);
        assertSame(unknown, ConstantFirstMatMul.rewrite(unknown).model());
        OnnxModel excluded = model(true).withExcluded(java.util.Set.of("mixing"));
        assertSame(excluded, ConstantFirstMatMul.rewrite(excluded).model());
        assertArrayEquals(new String[0], ConstantFirstMatMul.rewrite(excluded).rewritten().toArray(new String[0]));
    }
}
