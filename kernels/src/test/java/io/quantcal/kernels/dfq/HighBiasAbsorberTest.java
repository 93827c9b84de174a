package io.quantcal.kernels.dfq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class HighBiasAbsorberTest {

    static final int C = 6;

    /**
     * conv1 (4→6, 3×3, no pad) with bias ≈ 5 and weights in ±0.02, so that for inputs in [−1, 1] every
     * pre-activation is ≥ 5 − 0.1 − 36·0.02 > 4 — above every cᵢ = βᵢ − 3γᵢ ≤ 3.6 below — → Relu →
     * conv2 (6→5, k×k, pad p, bias).
     */
    static OnnxModel model(int k, int pad) {
        TestModels.Builder b = new TestModels.Builder(21);
        Random r = b.random();
        String w1 = b.init("conv1.weight", TestModels.uniform(r, C * 4 * 9, -0.02, 0.02), C, 4, 3, 3);
        String b1 = b.init("conv1.bias", TestModels.uniform(r, C, 4.9, 5.1), C);
        b.node(Graphs.node("Conv", "conv1", List.of("input", w1, b1), List.of("c1"), Map.of("kernel_shape", new long[] {3, 3})));
        b.relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "y", C, 5, k, 1, 1, pad, true);
        return b.build(13, List.of(Graphs.floatValue("input", -1, 4, 8, 8)), List.of(Graphs.floatValue("y", -1, 5, -1, -1)));
    }

    /** β as conv1's bias, γ = 0.5 (c = β − 1.5 ≈ 3.5), except channel 0 with γ = 2 (c = 0: nothing moves). */
    static Map<String, PreActivation> stats(OnnxModel m) {
        float[] beta = m.initializerFloats("conv1.bias");
        float[] gamma = new float[C];
        Arrays.fill(gamma, 0.5f);
        gamma[0] = 2f;
        return Map.of("conv1", new PreActivation(beta, gamma));
    }

    @Test
    void absorptionKeepsOutputsWhereTheReluIsActive() {
        OnnxModel m = model(1, 0);
        HighBiasAbsorption a = HighBiasAbsorber.absorb(m, stats(m));
        assertEquals(1, a.absorbed().size());
        float[] beta = m.initializerFloats("conv1.bias");
        float[] c = a.absorbed().get(0).amounts();
        assertEquals(0f, c[0]);
        for (int i = 1; i < C; i++) assertEquals(beta[i] - 1.5f, c[i], 1e-6);
        float[] b1 = a.model().initializerFloats("conv1.bias");
        for (int i = 0; i < C; i++) assertEquals(beta[i] - c[i], b1[i], 1e-6);
        // the statistics handed back describe the new pre-activation N(β − c, γ²)
        assertArrayEquals(b1, a.preActivations().get("conv1").beta(), 1e-6f);
        assertArrayEquals(stats(m).get("conv1").gamma(), a.preActivations().get("conv1").gamma());
    }

    @Test
    void outputsAreUnchangedInOnnxRuntime() {
        OnnxModel m = model(1, 0);
        HighBiasAbsorption a = HighBiasAbsorber.absorb(m, stats(m));
        float[] x = TestModels.uniform(new Random(4), 3 * 4 * 64, -1, 1);
        float[] before = DfqFixtures.run(m, "input", x, 3, 4, 8, 8);
        float[] after = DfqFixtures.run(a.model(), "input", x, 3, 4, 8, 8);
        assertTrue(TestModels.relativeError(after, before) < 1e-5, "relative error " + TestModels.relativeError(after, before));
    }

    @Test
    void withPaddingOnlyTheBorderChanges() {
        OnnxModel m = model(3, 1); // conv2 3×3, pad 1 on a 6×6 map
        HighBiasAbsorption a = HighBiasAbsorber.absorb(m, stats(m));
        float[] x = TestModels.uniform(new Random(4), 2 * 4 * 64, -1, 1);
        float[] before = DfqFixtures.run(m, "input", x, 2, 4, 8, 8);
        float[] after = DfqFixtures.run(a.model(), "input", x, 2, 4, 8, 8);
        double interior = 0, border = 0;
        for (int n = 0; n < 2 * 5; n++) {
            for (int yy = 0; yy < 6; yy++) {
                for (int xx = 0; xx < 6; xx++) {
                    int i = (n * 6 + yy) * 6 + xx;
                    double d = Math.abs(after[i] - before[i]);
                    if (yy == 0 || xx == 0 || yy == 5 || xx == 5) border = Math.max(border, d);
                    else interior = Math.max(interior, d);
                }
            }
        }
        assertTrue(interior < 1e-4, "interior changed by " + interior);
        assertTrue(border > 1e-2, "border outputs see the zero padding, changed by only " + border);
    }
}
