package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** {@link LayerSampler}: per-sample columns put together equal the whole-batch problem; seeded subsamples; the FP target. */
class LayerSamplerTest {

    static final int N = 3, C = 4, H = 5, W = 5, K = 6, GROUP = 2;

    static QuantizableNode conv(String activation, double lo, double hi) {
        return new QuantizableNode("conv", "Conv", "x", "w", "b", "y", activation, activation == null ? null : "z",
                new long[] {K, C / GROUP, 3, 3}, GROUP, new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {1, 1}, false, 0,
                lo, hi);
    }

    static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    static List<LayerSampler.Columns> perSample(QuantizableNode n, float[] x, int max, long seed) {
        List<LayerSampler.Columns> cols = new ArrayList<>();
        int per = C * H * W;
        for (int s = 0; s < N; s++) {
            float[] one = java.util.Arrays.copyOfRange(x, s * per, (s + 1) * per);
            cols.add(LayerSampler.columns(n, 100 + s, FloatTensor.of("x", one, 1, C, H, W), max, seed));
        }
        return cols;
    }

    @Test
    void perSampleConvColumnsEqualTheWholeBatchProblemAndTheFpTargetIsTheConvOutput() {
        QuantizableNode n = conv("Clip", 0, 0.5);
        float[] x = random(N * C * H * W, 1), w = random(K * C / GROUP * 9, 2), b = random(K, 3);
        double[] s = new double[K];
        java.util.Arrays.fill(s, 0.1);
        QuantParams q = new QuantParams(AdaRoundOptimizerTest.INT4, true, 0, s, new int[K]);
        INDArray xa = Nd4j.create(x, new long[] {N, C, H, W});
        INDArray wa = Nd4j.create(w, n.weightShape());
        INDArray ba = Nd4j.create(b, new long[] {K});
        AdaRoundProblem whole = AdaRoundProblem.conv("conv", xa, wa, ba, ConvSpec.of(1, 1, 1, GROUP), q, false);
        AdaRoundProblem pieced = LayerSampler.problem(n, w, b, q, perSample(n, x, 1000, 0), null, false, 16);
        assertEquals(whole.columns(), pieced.columns());
        assertArrayEquals(whole.inputs(), pieced.inputs());
        assertArrayEquals(whole.weight(), pieced.weight());

        // asymmetric form: the target comes from the FP inputs, clipped to [0, 0.5] like the Clip activation
        float[] xq = random(N * C * H * W, 4);
        AdaRoundProblem asym = LayerSampler.problem(n, w, b, q, perSample(n, xq, 1000, 0), perSample(n, x, 1000, 0), true, 16);
        assertEquals(0.0, asym.outputMin());
        assertEquals(0.5, asym.outputMax());
        INDArray ref = ConvForward.conv2d(xa, wa, ba, ConvSpec.of(1, 1, 1, GROUP), Activation.NONE); // [N, K, H, W]
        float[] t = asym.target();
        for (int col = 0; col < asym.columns(); col++) {
            int sample = col / (H * W), pos = col % (H * W);
            for (int k = 0; k < K; k++) {
                double y = Math.max(0, Math.min(0.5, ref.getDouble(sample, k, pos / W, pos % W)));
                assertEquals(y, t[col * K + k], 1e-5, "target column " + col + " channel " + k);
            }
        }
        // the same target computed sample by sample where each sample was captured (what the job ships)
        List<LayerSampler.Columns> targets = new java.util.ArrayList<>();
        for (LayerSampler.Columns c : perSample(n, x, 1000, 0)) targets.add(LayerSampler.target(n, w, b, q, c, true, 16));
        AdaRoundProblem shipped = LayerSampler.withTargets(LayerSampler.problem(n, w, b, q, perSample(n, xq, 1000, 0), null, true, 16),
                perSample(n, xq, 1000, 0), targets);
        assertArrayEquals(asym.target(), shipped.target(), 1e-6f);
        assertArrayEquals(asym.inputs(), shipped.inputs());
        assertEquals(asym.outputMax(), shipped.outputMax());
        // with the FP inputs as X, the given target is bit for bit the optimizer's own default target
        AdaRoundProblem self = LayerSampler.problem(n, w, b, q, perSample(n, x, 1000, 0), perSample(n, x, 1000, 0), true, 16);
        AdaRoundConfig cfg = AdaRoundConfig.defaults(16).withIterations(200).withLearningRate(1e-2);
        assertEquals(AdaRoundOptimizer.optimize(self.withTarget(null), cfg).mseAdaRound(),
                AdaRoundOptimizer.optimize(self, cfg).mseAdaRound(), 0.0);
    }

    @Test
    void convSubsampleIsSeededPerSampleAndTheSameForFpAndQuantizedInputs() {
        QuantizableNode n = conv(null, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY);
        float[] x = random(N * C * H * W, 5);
        List<LayerSampler.Columns> a = perSample(n, x, 7, 42), again = perSample(n, x, 7, 42), other = perSample(n, x, 7, 43);
        int rows = C * 9;
        INDArray full = Nd4j.vstack(ConvForward.patches(Nd4j.create(x, new long[] {N, C, H, W}), n.weightShape(),
                ConvSpec.of(1, 1, 1, GROUP)));
        for (int s = 0; s < N; s++) {
            assertEquals(7, a.get(s).count());
            assertArrayEquals(a.get(s).values(), again.get(s).values());
            // every kept column is one of this sample's patches
            float[] v = a.get(s).values();
            for (int j = 0; j < 7; j++) {
                boolean found = false;
                for (int m = 0; m < H * W && !found; m++) {
                    boolean eq = true;
                    for (int r = 0; r < rows && eq; r++) eq = full.getFloat(r, (long) s * H * W + m) == v[j * rows + r];
                    found = eq;
                }
                assertEquals(true, found, "sample " + s + " column " + j);
            }
        }
        assertNotEquals(java.util.Arrays.toString(a.get(0).values()), java.util.Arrays.toString(other.get(0).values()));
        assertNotEquals(java.util.Arrays.toString(a.get(0).values()), java.util.Arrays.toString(a.get(1).values()));
    }
}
