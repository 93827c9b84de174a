package io.quantcal.kernels.dfq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CrossLayerEqualizerTest {

    /**
     * conv1 (3→8, 3×3, pad 1) → Relu → dw (depthwise 8, 3×3, pad 1) → Relu → pw (8→6, 1×1): two chained
     * pairs. conv1's output channels and dw's channels get ranges spread over e^−3..e^2.
     */
    static OnnxModel chain(long seed) {
        TestModels.Builder b = new TestModels.Builder(seed);
        Random r = b.random();
        float[] w1 = TestModels.gaussian(r, 8 * 3 * 9, 0.3);
        float[] w2 = TestModels.gaussian(r, 8 * 9, 0.3);
        for (int o = 0; o < 8; o++) {
            double f1 = Math.exp(-3 + 5 * r.nextDouble()), f2 = Math.exp(-3 + 5 * r.nextDouble());
            for (int k = 0; k < 27; k++) w1[o * 27 + k] *= f1;
            for (int k = 0; k < 9; k++) w2[o * 9 + k] *= f2;
        }
        String c1w = b.init("conv1.weight", w1, 8, 3, 3, 3);
        String c1b = b.randomInit("conv1.bias", 0.2, 8);
        String dww = b.init("dw.weight", w2, 8, 1, 3, 3);
        String dwb = b.randomInit("dw.bias", 0.2, 8);
        b.node(Graphs.node("Conv", "conv1", List.of("input", c1w, c1b), List.of("c1"),
                Map.of("pads", new long[] {1, 1, 1, 1}, "kernel_shape", new long[] {3, 3})));
        b.relu("relu1", "c1", "r1");
        b.node(Graphs.node("Conv", "dw", List.of("r1", dww, dwb), List.of("c2"),
                Map.of("pads", new long[] {1, 1, 1, 1}, "group", 8L, "kernel_shape", new long[] {3, 3})));
        b.relu("relu2", "c2", "r2");
        b.conv("pw", "r2", "logits", 8, 6, 1, 1, 1, 0, true);
        return b.build(13, List.of(Graphs.floatValue("input", -1, 3, 6, 6)),
                List.of(Graphs.floatValue("logits", -1, 6, 6, 6)));
    }

    /** r₁ᵢ = max |W| over output channel i of a [C_out, ...] weight, by plain loops. */
    static double[] outputRanges(float[] w, int cout) {
        int inner = w.length / cout;
        double[] r = new double[cout];
        for (int o = 0; o < cout; o++) for (int k = 0; k < inner; k++) r[o] = Math.max(r[o], Math.abs(w[o * inner + k]));
        return r;
    }

    /** r₂ᵢ = max |W| over input channel i of a group-1 weight [C_out, C_in, k, k]. */
    static double[] inputRanges(float[] w, int cout, int cin) {
        int k2 = w.length / (cout * cin);
        double[] r = new double[cin];
        for (int o = 0; o < cout; o++) {
            for (int i = 0; i < cin; i++) {
                for (int k = 0; k < k2; k++) r[i] = Math.max(r[i], Math.abs(w[(o * cin + i) * k2 + k]));
            }
        }
        return r;
    }

    @Test
    void chainKeepsTheFunctionInOnnxRuntime() {
        OnnxModel m = chain(11);
        Equalized eq = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults());
        assertEquals(2, eq.result().pairs().size());
        assertTrue(eq.result().converged(), "converged in " + eq.result().iterations());
        assertFalse(eq.result().relu6TreatedAsRelu());
        float[] x = TestModels.gaussian(new Random(5), 4 * 3 * 36, 1.0);
        float[] before = DfqFixtures.run(m, "input", x, 4, 3, 6, 6);
        float[] after = DfqFixtures.run(eq.model(), "input", x, 4, 3, 6, 6);
        assertTrue(TestModels.relativeError(after, before) < 1e-4, "relative error " + TestModels.relativeError(after, before));
    }

    @Test
    void onePairAfterOneStepHasBothRangesAtTheGeometricMean() {
        OnnxModel m = chain(12);
        double[] r1 = outputRanges(m.initializerFloats("conv1.weight"), 8);
        double[] r2 = outputRanges(m.initializerFloats("dw.weight"), 8); // depthwise: input channel i = output channel i
        Equalized eq = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults().withMaxIterations(1));
        PairScales p = eq.result().pairs().get(0);
        assertEquals("conv1", p.conv1());
        assertEquals("dw", p.conv2());
        double[] r1New = outputRanges(eq.model().initializerFloats("conv1.weight"), 8);
        float[] s = p.scales();
        for (int i = 0; i < 8; i++) {
            double g = Math.sqrt(r1[i] * r2[i]);
            assertEquals(Math.sqrt(r1[i] * r2[i]) / r2[i], s[i], 1e-6 * s[i], "s of channel " + i);
            assertEquals(g, r1[i] / s[i], 1e-6 * g);
            assertEquals(g, r1New[i], 1e-6 * g, "r1 of channel " + i);
            // dw's scaled input range; not read back from the model, because the (dw, pw) step that
            // follows in the same sweep rescales dw's rows again
            assertEquals(g, r2[i] * s[i], 1e-6 * g);
        }
    }

    @Test
    void afterConvergenceEveryPairIsBalanced() {
        OnnxModel m = chain(13);
        Equalized eq = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults());
        double[] r1 = outputRanges(eq.model().initializerFloats("conv1.weight"), 8);
        double[] r2 = outputRanges(eq.model().initializerFloats("dw.weight"), 8);
        double[] r3 = inputRanges(eq.model().initializerFloats("pw.weight"), 6, 8);
        for (int i = 0; i < 8; i++) {
            // pair (conv1, dw): conv1's output range = dw's input range; pair (dw, pw): dw's output range = pw's input range
            assertEquals(r1[i], r2[i], 1e-4 * r1[i], "conv1/dw channel " + i);
            assertEquals(r2[i], r3[i], 1e-4 * r2[i], "dw/pw channel " + i);
        }
    }

    @Test
    void unbalancedMobileNetReluPairsKeepTheFunction() {
        OnnxModel m = DfqFixtures.model("mobilenet_small_unbalanced.onnx");
        Equalized eq = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults().withTreatRelu6AsRelu(false));
        assertEquals(3, eq.result().pairs().size(), eq.result().pairs().toString());
        for (PairScales p : eq.result().pairs()) assertEquals("Relu", p.activation());
        assertFalse(eq.result().relu6TreatedAsRelu());
        float[] x = TestModels.gaussian(new Random(3), 8 * 784, 1.0);
        float[] before = DfqFixtures.run(m, "input", x, 8, 1, 28, 28);
        float[] after = DfqFixtures.run(eq.model(), "input", x, 8, 1, 28, 28);
        assertTrue(TestModels.relativeError(after, before) < 1e-4, "relative error " + TestModels.relativeError(after, before));
    }

    @Test
    void relu6PairsAreEqualizedOnlyWhenAskedAndSaySo() {
        OnnxModel m = DfqFixtures.model("mobilenet_small_unbalanced.onnx");
        Equalized eq = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults());
        assertEquals(6, eq.result().pairs().size(), eq.result().pairs().toString());
        assertTrue(eq.result().relu6TreatedAsRelu());
        assertEquals(3, eq.result().pairs().stream().filter(p -> "Clip".equals(p.activation())).count());
    }
}
