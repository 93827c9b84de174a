package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/**
 * Einsum equations that are matrix products become MatMul (with Transposes where the letters come in another order):
 * the plan worked by hand, and ONNX Runtime's outputs against its own Einsum within float rounding; MaxViT's attention
 * products and a linear layer written as an Einsum get quantized.
 */
class EinsumAsMatMulTest {

    @Test
    void plansWorkedByHand() {
        // x · W: nothing to move
        EinsumAsMatMul.Plan p = EinsumAsMatMul.plan("bij,jk->bik");
        assertNull(p.permA());
        assertNull(p.permB());
        assertNull(p.permOut());
        // leading free letters of x over a 2-D weight: x [b, s, h] · W [h, d]; and W [d, h] transposed
        assertNull(EinsumAsMatMul.plan("bsh,hd->bsd").permA());
        assertArrayEquals(new long[] {1, 0}, EinsumAsMatMul.plan("bsh,dh->bsd").permB());
        // the same on the other side: W [m, k] · x [b, k, n]
        assertNull(EinsumAsMatMul.plan("mk,bkn->bmn").permB());
        // x · Wᵀ: W [k, j] transposed to [j, k]
        p = EinsumAsMatMul.plan("bij,kj->bik");
        assertNull(p.permA());
        assertArrayEquals(new long[] {1, 0}, p.permB());
        // MaxViT's Q·Kᵀ (spaces as torch writes them): K [B, G, H, J, D] → [B, G, H, D, J]
        p = EinsumAsMatMul.plan("B G H I D, B G H J D -> B G H I J");
        assertNull(p.permA());
        assertArrayEquals(new long[] {0, 1, 2, 4, 3}, p.permB());
        assertNull(p.permOut());
        // an output in another order: the product [b, i, k] transposed to [b, k, i]
        p = EinsumAsMatMul.plan("bij,bjk->bki");
        assertArrayEquals(new long[] {0, 2, 1}, p.permOut());
        // batch letters in another order in an operand: a [h, b, i, j] → [b, h, i, j]
        p = EinsumAsMatMul.plan("hbij,bhjk->bhik");
        assertArrayEquals(new long[] {1, 0, 2, 3}, p.permA());
        assertNull(p.permB());
        assertNull(EinsumAsMatMul.plan("...ij,...jk->...ik").permA());
        // not matrix products, or not this rule's
        for (String eq : new String[] {"ii->i", "ij,ij->ij", "ij,jk", "bij,bjk->bk", "ij,jk,kl->il", "i,j->ij",
                "ijk,jkl->il", "ij,kj->ik_", "...ij,kj->...ik", "iij,jk->ik", "ij,j->i", "bxij,bjk->bxik"}) {
            assertNull(EinsumAsMatMul.plan(eq), eq);
        }
    }

    /** One Einsum node "e" on a [2, 3, 4, 5] (or as shaped) and b, given as an input or an initializer. */
    static OnnxModel einsum(String eq, long[] aShape, long[] bShape, float[] constB, long... yShape) {
        List<NodeProto> nodes = List.of(Graphs.node("Einsum", "e", List.of("a", "b"), List.of("y"), Map.of("equation", eq)));
        List<TensorProto> inits = constB == null ? List.of() : List.of(Graphs.floatTensor("b", constB, bShape));
        var inputs = new java.util.ArrayList<>(List.of(Graphs.floatValue("a", aShape)));
        if (constB == null) inputs.add(Graphs.floatValue("b", bShape));
        return OnnxModel.parse("einsum.onnx", Graphs.model(13, nodes, inits, inputs, List.of(Graphs.floatValue("y", yShape)))
                .toByteArray(), null);
    }

    static float[] run(OnnxModel m, Map<String, float[]> values, Map<String, long[]> shapes) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions();
             OrtSession s = env.createSession(m.toByteArray(), o)) {
            Map<String, OnnxTensor> feed = new HashMap<>();
            try {
                for (String k : values.keySet()) {
                    if (s.getInputNames().contains(k)) {
                        feed.put(k, OnnxTensor.createTensor(env, FloatBuffer.wrap(values.get(k)), shapes.get(k)));
                    }
                }
                try (OrtSession.Result r = s.run(feed)) {
                    FloatBuffer y = ((OnnxTensor) r.get(0)).getFloatBuffer();
                    float[] out = new float[y.remaining()];
                    y.get(out);
                    return out;
                }
            } finally {
                for (OnnxTensor t : feed.values()) t.close();
            }
        }
    }

    static void assertSame(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5 * Math.max(1, Math.abs(expected[i])), "y[" + i + "]");
        }
    }

    @Test
    void maxVitAttentionProductsBecomeMatMulsOfTwoActivations() throws Exception {
        Random r = new Random(4);
        long[] q = {2, 3, 2, 5, 4}, k = {2, 3, 2, 6, 4};
        float[] qa = TestModels.gaussian(r, 2 * 3 * 2 * 5 * 4, 1), kb = TestModels.gaussian(r, 2 * 3 * 2 * 6 * 4, 1);
        OnnxModel m = einsum("B G H I D, B G H J D -> B G H I J", q, k, null, 2, 3, 2, 5, 6);
        EinsumAsMatMul.Result res = EinsumAsMatMul.rewrite(m);
        assertEquals(List.of("e"), res.rewritten());
        assertEquals("MatMul", res.model().node("e").getOpType());
        assertEquals(List.of(new Coverage.Entry("e", "MatMul", true, Coverage.ACTIVATIONS_ONLY)), Coverage.of(res.model()),
                "a MatMul of two activations (quantized on both inputs)");
        Map<String, float[]> v = Map.of("a", qa, "b", kb);
        Map<String, long[]> s = Map.of("a", q, "b", k);
        assertSame(run(m, v, s), run(res.model(), v, s));
        // and P · V with the output in the operands' order
        long[] p = {2, 3, 2, 5, 6}, val = {2, 3, 2, 6, 4};
        float[] pa = TestModels.gaussian(r, 2 * 3 * 2 * 5 * 6, 1), vb = TestModels.gaussian(r, 2 * 3 * 2 * 6 * 4, 1);
        OnnxModel pv = einsum("B G H I J, B G H J D -> B G H I D", p, val, null, 2, 3, 2, 5, 4);
        EinsumAsMatMul.Result r2 = EinsumAsMatMul.rewrite(pv);
        assertEquals(1, r2.model().nodes().size(), "no Transpose needed");
        assertSame(run(pv, Map.of("a", pa, "b", vb), Map.of("a", p, "b", val)),
                run(r2.model(), Map.of("a", pa, "b", vb), Map.of("a", p, "b", val)));
    }

    @Test
    void aLinearLayerWrittenAsEinsumGetsAConstantWeight() throws Exception {
        Random r = new Random(5);
        float[] w = TestModels.gaussian(r, 6 * 4, 0.5);
        // y[b, i, k] = Σ_j x[b, i, j] · W[k, j]: W [6, 4] is transposed into the weight [4, 6] by the constant folder
        OnnxModel m = einsum("bij,kj->bik", new long[] {-1, 3, 4}, new long[] {6, 4}, w, -1, 3, 6);
        EinsumAsMatMul.Result res = EinsumAsMatMul.rewrite(m);
        OnnxModel folded = ConstantFolder.fold(res.model()).model();
        assertEquals(List.of("e"), folded.quantizableNodes().stream().map(QuantizableNode::name).toList());
        assertEquals(List.of(4L, 6L), folded.initializer(folded.node("e").getInput(1)).getDimsList());
        float[] x = TestModels.gaussian(r, 2 * 3 * 4, 1);
        assertSame(run(m, Map.of("a", x), Map.of("a", new long[] {2, 3, 4})),
                run(folded, Map.of("a", x), Map.of("a", new long[] {2, 3, 4})));
        // an output in another order than the product's: a Transpose after the MatMul
        OnnxModel t = einsum("bij,bjk->bki", new long[] {2, 3, 4}, new long[] {2, 4, 5}, null, 2, 5, 3);
        EinsumAsMatMul.Result rt = EinsumAsMatMul.rewrite(t);
        assertEquals("Transpose", rt.model().producer("y").getOpType());
        float[] b = TestModels.gaussian(r, 2 * 4 * 5, 1);
        assertSame(run(t, Map.of("a", x, "b", b), Map.of("a", new long[] {2, 3, 4}, "b", new long[] {2, 4, 5})),
                run(rt.model(), Map.of("a", x, "b", b), Map.of("a", new long[] {2, 3, 4}, "b", new long[] {2, 4, 5})));
        // an Einsum that is not a matrix product stays
        OnnxModel diag = einsum("bij,bij->bij", new long[] {2, 3, 4}, new long[] {2, 3, 4}, null, 2, 3, 4);
        assertEquals(List.of(), EinsumAsMatMul.rewrite(diag).rewritten());
    }
}
