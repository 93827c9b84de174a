package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.dfq.PreActivation;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link AffineFolder}: Mul/Add by constants after a Conv folded into its weight and bias. */
class AffineFolderTest {

    /**
     * conv1 → Mul(0.5) → Add(−0.25) → Relu → conv2 (no bias) → Add([1, 8, 1, 1]) → Mul([8, 1, 1], constant first) →
     * deconv (ConvTranspose) → Add([1, 4, 1, 1]) → conv3, whose output is read twice (Mul(2) and a graph output), then
     * Mul([8]) which broadcasts along W, not the channels: the last two stay.
     */
    static OnnxModel model() {
        TestModels.Builder b = new TestModels.Builder(41);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true);
        b.init("half", new float[] {0.5f});
        b.init("shift", new float[] {-0.25f});
        b.node(Graphs.node("Mul", "scale1", List.of("c1", "half"), List.of("m1")));
        b.node(Graphs.node("Add", "shift1", List.of("m1", "shift"), List.of("a1")));
        b.relu("relu1", "a1", "r1");
        b.conv("conv2", "r1", "c2", 8, 8, 3, 1, 1, 1, false);
        b.randomInit("bias2", 0.3, 1, 8, 1, 1);
        b.init("k2", new float[] {1, -2, 0.5f, 3, -1, 0.25f, 2, 1.5f}, 8, 1, 1);
        b.node(Graphs.node("Add", "shift2", List.of("c2", "bias2"), List.of("a2")));
        b.node(Graphs.node("Mul", "scale2", List.of("k2", "a2"), List.of("m2")));
        b.randomInit("deconv.weight", 0.3, 8, 4, 1, 1);
        b.node(Graphs.node("ConvTranspose", "deconv", List.of("m2", "deconv.weight"), List.of("d"),
                Map.of("kernel_shape", new long[] {1, 1})));
        b.randomInit("bias3", 0.3, 1, 4, 1, 1);
        b.node(Graphs.node("Add", "shift3", List.of("d", "bias3"), List.of("a3")));
        b.conv("conv3", "a3", "c3", 4, 8, 3, 1, 1, 1, true);
        b.init("two", new float[] {2f});
        b.node(Graphs.node("Mul", "double3", List.of("c3", "two"), List.of("m3")));
        b.randomInit("alongW", 0.5, 8);
        b.node(Graphs.node("Mul", "alongW_mul", List.of("m3", "alongW"), List.of("y")));
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)),
                List.of(Graphs.floatValue("y", -1, 8, 8, 8), Graphs.floatValue("c3", -1, 8, 8, 8)));
    }

    @Test
    void constantMulsAndAddsAfterAConvFoldIntoItsWeightAndBias() {
        OnnxModel m = model();
        AffineFolder.Result r = AffineFolder.fold(m);
        assertEquals(3, r.folds().size(), r.folds().toString());
        AffineFolder.Fold f1 = r.folds().get(0), f2 = r.folds().get(1), f3 = r.folds().get(2);
        assertEquals("conv1", f1.conv());
        assertEquals(List.of("scale1", "shift1"), f1.ops());
        // y = 0.5·c1 − 0.25 on every channel
        assertArrayEquals(new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, f1.scale(), 0f);
        assertArrayEquals(new float[] {-0.25f, -0.25f, -0.25f, -0.25f, -0.25f, -0.25f, -0.25f, -0.25f}, f1.shift(), 0f);
        // (c2 + b)·k: scale k, shift b·k
        assertEquals("conv2", f2.conv());
        assertEquals(List.of("shift2", "scale2"), f2.ops());
        float[] bias2 = m.initializerFloats("bias2"), k2 = m.initializerFloats("k2");
        for (int c = 0; c < 8; c++) {
            assertEquals(k2[c], f2.scale()[c], 0f);
            assertEquals(bias2[c] * k2[c], f2.shift()[c], 1e-7);
        }
        assertEquals("deconv", f3.conv());
        assertEquals(List.of("shift3"), f3.ops());

        OnnxModel d = r.model();
        // the hand-worked weights: conv1's are halved, its bias b/2 − 1/4; the Conv writes the chain's output
        float[] w1 = m.initializerFloats("conv1.weight"), w1f = d.initializerFloats(d.node("conv1").getInput(1));
        for (int i = 0; i < w1.length; i++) assertEquals(w1[i] * 0.5f, w1f[i], 0f);
        float[] b1 = m.initializerFloats("conv1.bias"), b1f = d.initializerFloats(d.node("conv1").getInput(2));
        for (int c = 0; c < 8; c++) assertEquals(b1[c] * 0.5 - 0.25, b1f[c], 1e-7);
        assertEquals("a1", d.node("conv1").getOutput(0));
        assertEquals("m2", d.node("conv2").getOutput(0));
        assertEquals("a3", d.node("deconv").getOutput(0));
        // conv3's output is a graph output too, and the [8] constant broadcasts along W: both Muls stay
        assertEquals("c3", d.node("conv3").getOutput(0));
        for (String kept : List.of("double3", "alongW_mul")) assertEquals("Mul", d.node(kept).getOpType());
        for (String gone : List.of("scale1", "shift1", "shift2", "scale2", "shift3")) {
            assertTrue(d.nodes().stream().noneMatch(n -> n.getName().equals(gone)), gone);
        }
        assertTrue(!d.isInitializer("half") && !d.isInitializer("k2") && !d.isInitializer("bias3"), "constants left");

        // the same function in ONNX Runtime
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(5), 4 * 4 * 64, 1.0), 4, 4, 8, 8);
        for (String out : List.of("y", "c3")) {
            double err = TestModels.relativeError(run(d, x, out), run(m, x, out));
            assertTrue(err < 1e-6, out + ": relative error " + err);
        }
        assertSame(d, AffineFolder.fold(d).model());
    }

    @Test
    void aBatchNormsPreActivationFollowsTheAffineMap() {
        PreActivation p = new PreActivation(new float[] {1f, -2f}, new float[] {0.5f, 3f});
        PreActivation q = p.affine(new float[] {2f, -1f}, new float[] {0.5f, 1f});
        // N(kβ + a, (kγ)²): N(2.5, 1²) and N(3, 3²) (γ's sign does not matter)
        assertArrayEquals(new float[] {2.5f, 3f}, q.beta(), 0f);
        assertEquals(1f, Math.abs(q.gamma()[0]), 0f);
        assertEquals(3f, Math.abs(q.gamma()[1]), 0f);
    }

    static float[] run(OnnxModel m, FloatTensor x, String output) {
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(1, 1, OptLevel.NO_OPT))) {
            return r.run(x).get(output).data();
        }
    }
}
