package io.quantcal.kernels.dfq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A synthetic Conv layer (8→6, 3×3, no padding) whose input channels really are ReLUs of N(βᵢ, γᵢ²),
 * its weight fake-quantized to 4 bits per tensor so that the output shift is well above sampling noise.
 * Forward passes by the plain double-accumulating reference {@link TestModels#conv2d}.
 */
class BiasCorrectionTest {

    static final long[] W_SHAPE = {6, 8, 3, 3};
    static final long[] NO_PAD = {0, 0, 0, 0};
    static final long[] ONES = {1, 1};

    final Random r = new Random(31);
    final float[] beta = TestModels.uniform(r, 8, -0.5, 2.0);
    final float[] gamma = TestModels.uniform(r, 8, 0.3, 1.5);
    final float[] w = TestModels.gaussian(r, 6 * 8 * 9, 0.2);
    final float[] wq = DfqFixtures.fakeQuant(w, W_SHAPE, 4);
    final float[] bias = TestModels.gaussian(r, 6, 0.1);

    /** n samples [n, 8, 10, 10] of ReLU(N(βᵢ, γᵢ²)), i.i.d. per element. */
    float[] inputs(int n, long seed) {
        Random g = new Random(seed);
        float[] x = new float[n * 8 * 100];
        for (int b = 0; b < n; b++) {
            for (int i = 0; i < 8; i++) {
                for (int k = 0; k < 100; k++) {
                    x[(b * 8 + i) * 100 + k] = (float) Math.max(0, beta[i] + gamma[i] * g.nextGaussian());
                }
            }
        }
        return x;
    }

    static float[] conv(float[] x, int n, float[] weight, float[] b) {
        return TestModels.conv2d(x, new long[] {n, 8, 10, 10}, weight, W_SHAPE, b, 1, ONES, NO_PAD, ONES, null);
    }

    static final long[] Y_SHAPE_OF_16 = {16, 6, 8, 8};

    static double[] meanError(float[] yq, float[] y, long[] shape) {
        double[] mq = ChannelMeans.of(yq, shape).means(), mf = ChannelMeans.of(y, shape).means();
        double[] e = new double[mq.length];
        for (int j = 0; j < e.length; j++) e[j] = mq[j] - mf[j];
        return e;
    }

    static double maxAbs(double[] a) {
        double m = 0;
        for (double v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    @Test
    void channelMeansMergeByAddition() {
        float[] y = conv(inputs(16, 1), 16, w, bias);
        int half = y.length / 2;
        ChannelMeans a = ChannelMeans.of(java.util.Arrays.copyOfRange(y, 0, half), new long[] {8, 6, 8, 8});
        ChannelMeans b = ChannelMeans.of(java.util.Arrays.copyOfRange(y, half, y.length), new long[] {8, 6, 8, 8});
        ChannelMeans all = ChannelMeans.of(y, Y_SHAPE_OF_16);
        assertEquals(all.count(), a.merge(b).count());
        assertArrayEquals(all.means(), a.merge(b).means(), 1e-9);
        assertEquals(16 * 64, all.count());
        // [N, C] outputs (Gemm) too
        ChannelMeans g = ChannelMeans.of(new float[] {1, 2, 3, 4, 5, 6}, new long[] {3, 2});
        assertArrayEquals(new double[] {3, 4}, g.means(), 1e-12);
    }

    @Test
    void empiricalCorrectionZeroesTheMeanErrorOnItsData() {
        float[] x = inputs(16, 2);
        float[] y = conv(x, 16, w, bias);
        float[] yq = conv(x, 16, wq, bias);
        double before = maxAbs(meanError(yq, y, Y_SHAPE_OF_16));
        // gathered in two partitions and merged, as the Spark job does
        int half = y.length / 2;
        long[] halfShape = {8, 6, 8, 8};
        ChannelMeans fp = ChannelMeans.of(java.util.Arrays.copyOfRange(y, 0, half), halfShape)
                .merge(ChannelMeans.of(java.util.Arrays.copyOfRange(y, half, y.length), halfShape));
        ChannelMeans q = ChannelMeans.of(java.util.Arrays.copyOfRange(yq, 0, half), halfShape)
                .merge(ChannelMeans.of(java.util.Arrays.copyOfRange(yq, half, yq.length), halfShape));
        float[] corrected = BiasCorrection.empirical(bias, fp, q);
        double after = maxAbs(meanError(conv(x, 16, wq, corrected), y, Y_SHAPE_OF_16));
        System.out.printf("empirical bias correction: max |mean error| per channel %.3g -> %.3g%n", before, after);
        assertTrue(before > 1e-2, "the 4-bit weights should shift the mean: " + before);
        assertTrue(after < 1e-5, "mean error after empirical correction " + after);
    }

    @Test
    void analyticCorrectionLowersTheMeanError() {
        float[] x = inputs(16, 3);
        float[] y = conv(x, 16, w, bias);
        double[] before = meanError(conv(x, 16, wq, bias), y, Y_SHAPE_OF_16);
        double[] ex = BiasCorrection.expectedInput(new PreActivation(beta, gamma), 0, Double.POSITIVE_INFINITY);
        float[] corrected = BiasCorrection.corrected(bias, BiasCorrection.outputShift(w, wq, W_SHAPE, 1, ex));
        double[] after = meanError(conv(x, 16, wq, corrected), y, Y_SHAPE_OF_16);
        System.out.printf("analytic bias correction: max |mean error| per channel %.3g -> %.3g%n", maxAbs(before), maxAbs(after));
        assertTrue(maxAbs(after) < 0.2 * maxAbs(before), maxAbs(before) + " -> " + maxAbs(after));
    }

    @Test
    void analyticOnAModelFindsThePrecedingLayersStatistics() {
        TestModels.Builder b = new TestModels.Builder(5);
        b.conv("prev", "input", "p", 3, 8, 1, 1, 1, 0, true).relu("relu", "p", "r");
        String wn = b.init("conv.weight", w, W_SHAPE);
        b.node(Graphs.node("Conv", "conv", List.of("r", wn), List.of("y"), Map.of("kernel_shape", new long[] {3, 3})));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("input", -1, 3, 10, 10)), List.of(Graphs.floatValue("y", -1, 6, 8, 8)));
        PreActivation z = new PreActivation(beta, gamma);
        Map<String, float[]> out = BiasCorrection.analytic(m, Map.of("conv", wq), Map.of("prev", z));
        double[] shift = BiasCorrection.outputShift(w, wq, W_SHAPE, 1, BiasCorrection.expectedInput(z, 0, Double.POSITIVE_INFINITY));
        float[] expected = BiasCorrection.corrected(new float[6], shift);
        assertArrayEquals(expected, out.get("conv"), 1e-6f);
        OnnxModel corrected = BiasCorrection.withBiases(m, out);
        assertEquals(3, corrected.node("conv").getInputCount(), "a bias input is added to the bias-free Conv");
        assertArrayEquals(expected, corrected.initializerFloats(corrected.node("conv").getInput(2)));
    }
}
