package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.GemmForward;
import io.quantcal.kernels.layer.Metrics;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** AdaRound end to end on synthetic layers: beats round-to-nearest, codes on the grid, deterministic. */
class AdaRoundOptimizerTest {

    static final QuantGrid INT4 = new QuantGrid(4, true, false);

    /** Per-channel symmetric 4-bit parameters along {@code axis} covering max|w| of each channel. */
    static QuantParams perChannel(float[] w, int channels, int axis, boolean channelIsRow, int rowLength) {
        double[] s = new double[channels];
        for (int i = 0; i < w.length; i++) {
            int c = channelIsRow ? i / rowLength : i % rowLength;
            s[c] = Math.max(s[c], Math.abs(w[i]) / 7.0);
        }
        return new QuantParams(INT4, true, axis, s, new int[channels]);
    }

    /** Inputs with strongly correlated features, x = mix·z, as real activations are. */
    static float[] correlatedInputs(int columns, int depth, long seed) {
        Random r = new Random(seed);
        double[][] mix = new double[depth][4];
        for (double[] row : mix) for (int j = 0; j < 4; j++) row[j] = r.nextGaussian();
        float[] x = new float[columns * depth];
        for (int m = 0; m < columns; m++) {
            double[] z = {r.nextGaussian(), r.nextGaussian(), r.nextGaussian(), r.nextGaussian()};
            for (int d = 0; d < depth; d++) {
                double v = 0.2 * r.nextGaussian();
                for (int j = 0; j < 4; j++) v += mix[d][j] * z[j];
                x[m * depth + d] = (float) v;
            }
        }
        return x;
    }

    static AdaRoundProblem synthetic(boolean relu) {
        int cout = 16, depth = 64, cols = 1024;
        Random r = new Random(11);
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.1 * r.nextGaussian());
        QuantParams q = perChannel(w, cout, 0, true, depth);
        float[] b = new float[cout];
        for (int i = 0; i < cout; i++) b[i] = (float) (0.1 * r.nextGaussian());
        return new AdaRoundProblem("synthetic", new long[] {cout, depth}, false, w, cout, depth, 1, b, q.scale(), q.zeroPoint(),
                q.qmin(), q.qmax(), correlatedInputs(cols, depth, 12), cols, null, relu);
    }

    static final AdaRoundConfig FAST = AdaRoundConfig.defaults(128).withIterations(2000).withLearningRate(1e-2).withSeed(3);

    static void assertOnGridAndNextToFloor(AdaRoundProblem p, int[] codes) {
        float[] w = p.weight();
        for (int k = 0; k < codes.length; k++) {
            int c = k / p.depth();
            float s = (float) p.scale(c);
            int z = p.zeroPoint(c);
            double floor = Math.floor(w[k] / s);
            int lo = (int) Math.max(p.qmin(), Math.min(p.qmax(), floor + z));
            int hi = (int) Math.max(p.qmin(), Math.min(p.qmax(), floor + 1 + z));
            assertTrue(codes[k] == lo || codes[k] == hi, "code " + codes[k] + " of weight " + k + " not in {" + lo + ", " + hi + "}");
            assertTrue(codes[k] >= p.qmin() && codes[k] <= p.qmax());
        }
    }

    @Test
    void beatsRoundToNearestOnASyntheticLayer() {
        for (boolean relu : new boolean[] {false, true}) {
            AdaRoundProblem p = synthetic(relu);
            AdaRoundResult r = AdaRoundOptimizer.optimize(p, FAST);
            System.out.println((relu ? "ReLU output: " : "linear output: ") + r);
            assertTrue(r.mseAdaRound() < 0.8 * r.mseRoundToNearest(),
                    "AdaRound MSE " + r.mseAdaRound() + " vs round-to-nearest " + r.mseRoundToNearest());
            assertOnGridAndNextToFloor(p, r.integerWeights());
            assertEquals(20, r.lossHistory().length);
            assertEquals(2000, r.iterations());
            assertArrayEquals(new long[] {16, 64}, r.shape());
        }
    }

    @Test
    void deterministicForAFixedSeed() {
        AdaRoundProblem p = synthetic(true);
        AdaRoundConfig c = FAST.withIterations(300);
        AdaRoundResult a = AdaRoundOptimizer.optimize(p, c);
        AdaRoundResult b = AdaRoundOptimizer.optimize(p, c);
        assertArrayEquals(a.integerWeights(), b.integerWeights());
        assertArrayEquals(a.lossHistory(), b.lossHistory());
        assertEquals(a.mseAdaRound(), b.mseAdaRound());
        AdaRoundResult other = AdaRoundOptimizer.optimize(p, c.withSeed(4));
        assertTrue(other.lossHistory()[1] != a.lossHistory()[1], "another seed samples other columns");
    }

    /**
     * A lone task's gemm units and weight-wise loops on several threads give the same result bit for bit: a dense
     * layer of three gemm units whose weights (160 × 576) span several chunks, and a depthwise one (256 groups of 9)
     * on the direct path.
     */
    @Test
    void theSameResultOnOneAndOnSeveralThreads() {
        int cout = 160, depth = 576, cols = 1024;  // gemm units of 64, 64 and 32 output channels
        Random r = new Random(31);
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.05 * r.nextGaussian());
        QuantParams q = perChannel(w, cout, 0, true, depth);
        AdaRoundProblem dense = new AdaRoundProblem("dense", new long[] {cout, depth}, false, w, cout, depth, 1, new float[cout],
                q.scale(), q.zeroPoint(), q.qmin(), q.qmax(), correlatedInputs(cols, depth, 32), cols, null, true);
        int channels = 256;
        float[] wd = new float[channels * 9];
        for (int i = 0; i < wd.length; i++) wd[i] = (float) (0.3 * r.nextGaussian());
        QuantParams qd = perChannel(wd, channels, 0, true, 9);
        AdaRoundProblem depthwise = new AdaRoundProblem("depthwise", new long[] {channels, 1, 3, 3}, false, wd, channels, 9,
                channels, new float[channels], qd.scale(), qd.zeroPoint(), qd.qmin(), qd.qmax(),
                correlatedInputs(300, channels * 9, 33), 300, null, true);
        assertTrue(dense.outChannels() * dense.depth() > 2 * AdaRoundLoss.WEIGHT_CHUNK && dense.outChannels() > 2 * AdaRoundLoss.UNIT_ROWS);
        for (AdaRoundProblem p : new AdaRoundProblem[] {dense, depthwise}) {
            AdaRoundConfig c = AdaRoundConfig.defaults(512).withIterations(300).withLearningRate(1e-2).withSeed(7);
            AdaRoundResult one = AdaRoundOptimizer.optimize(p, c, 1);
            AdaRoundResult three = AdaRoundOptimizer.optimize(p, c, 3);
            assertArrayEquals(one.integerWeights(), three.integerWeights(), p.layer());
            assertArrayEquals(one.lossHistory(), three.lossHistory(), p.layer());
            assertEquals(one.mseAdaRound(), three.mseAdaRound(), p.layer());
            assertEquals(one.mseRoundToNearest(), three.mseRoundToNearest(), p.layer());
            assertTrue(one.mseAdaRound() < one.mseRoundToNearest(), p.layer() + ": " + one);
        }
    }

    /** Conv through ConvForward.patches: the codes, dequantized and run through ConvForward.conv2d, give the reported MSEs. */
    static void checkConv(int group, boolean relu) {
        ConvSpec spec = ConvSpec.of(1, 1, 1, group);
        int c = 8, k = 8;
        Random r = new Random(21 + group);
        int depth = c / group * 9;
        float[] xs = correlatedInputs(4 * 6 * 6 * c / 8, 8, 22);  // 8 correlated channels per pixel
        INDArray x = Nd4j.create(xs, new long[] {4, 6, 6, c}, 'c').permute(0, 3, 1, 2).dup('c');
        float[] wv = new float[k * depth];
        for (int i = 0; i < wv.length; i++) wv[i] = (float) (0.2 * r.nextGaussian());
        INDArray w = Nd4j.create(wv, new long[] {k, c / group, 3, 3}, 'c');
        INDArray b = Nd4j.create(new float[] {0.1f, -0.2f, 0.05f, 0f, 0.3f, -0.1f, 0.2f, -0.05f}, new long[] {k}, 'c');
        QuantParams q = perChannel(wv, k, 0, true, depth);
        AdaRoundProblem p = AdaRoundProblem.conv("conv", x, w, b, spec, q, relu);
        assertEquals(4 * 6 * 6, p.columns());
        AdaRoundResult res = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(64).withIterations(1500).withLearningRate(1e-2));
        assertOnGridAndNextToFloor(p, res.integerWeights());

        Activation act = relu ? Activation.RELU : Activation.NONE;
        INDArray fp = ConvForward.conv2d(x, w, b, spec, act);
        INDArray wAda = Nd4j.create(FakeQuant.dequantize(res.integerWeights(), res.shape(), q), res.shape(), 'c');
        INDArray wRtn = FakeQuant.apply(w, q);
        double mseAda = Metrics.mse(fp, ConvForward.conv2d(x, wAda, b, spec, act));
        double mseRtn = Metrics.mse(fp, ConvForward.conv2d(x, wRtn, b, spec, act));
        System.out.printf("conv group %d relu %b: adaround %.6g (reported %.6g), nearest %.6g (reported %.6g)%n", group, relu,
                mseAda, res.mseAdaRound(), mseRtn, res.mseRoundToNearest());
        assertEquals(mseAda, res.mseAdaRound(), 1e-4 * mseAda);
        assertEquals(mseRtn, res.mseRoundToNearest(), 1e-4 * mseRtn);
        assertTrue(mseAda < mseRtn, "AdaRound " + mseAda + " vs round-to-nearest " + mseRtn);
    }

    @Test
    void convThroughPatches() {
        checkConv(1, true);
    }

    @Test
    void groupedAndDepthwiseConv() {
        checkConv(2, false);
        checkConv(8, true);
    }

    @Test
    void gemmWithAndWithoutTransB() {
        Random r = new Random(31);
        float[] xs = correlatedInputs(256, 24, 32);
        INDArray x = Nd4j.create(xs, new long[] {256, 24}, 'c');
        for (boolean transB : new boolean[] {false, true}) {
            long[] shape = transB ? new long[] {10, 24} : new long[] {24, 10};
            float[] wv = new float[240];
            for (int i = 0; i < wv.length; i++) wv[i] = (float) (0.2 * r.nextGaussian());
            INDArray w = Nd4j.create(wv, shape, 'c');
            QuantParams q = transB ? perChannel(wv, 10, 0, true, 24) : perChannel(wv, 10, 1, false, 10);
            AdaRoundProblem p = AdaRoundProblem.gemm("fc", x, w, null, transB, q, false);
            AdaRoundResult res = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(32).withIterations(1500).withLearningRate(1e-2));
            assertArrayEquals(shape, res.shape());
            INDArray fp = GemmForward.gemm(x, w, null, transB);
            INDArray wAda = Nd4j.create(FakeQuant.dequantize(res.integerWeights(), shape, q), shape, 'c');
            double mseAda = Metrics.mse(fp.dup('c'), GemmForward.gemm(x, wAda, null, transB).dup('c'));
            double mseRtn = Metrics.mse(fp.dup('c'), GemmForward.gemm(x, FakeQuant.apply(w, q), null, transB).dup('c'));
            assertEquals(mseAda, res.mseAdaRound(), 1e-4 * mseAda, "transB " + transB);
            assertEquals(mseRtn, res.mseRoundToNearest(), 1e-4 * mseRtn, "transB " + transB);
            assertTrue(mseAda < mseRtn, "transB " + transB + ": AdaRound " + mseAda + " vs " + mseRtn);
        }
    }

    @Test
    void matmulFlattensLeadingAxes() {
        INDArray x = Nd4j.create(correlatedInputs(64, 12, 41), new long[] {4, 16, 12}, 'c');
        Random r = new Random(42);
        float[] wv = new float[12 * 6];
        for (int i = 0; i < wv.length; i++) wv[i] = (float) r.nextGaussian();
        INDArray w = Nd4j.create(wv, new long[] {12, 6}, 'c');
        QuantParams q = QuantParams.perTensor(INT4, true, 3.0 / 7, 0);
        AdaRoundProblem p = AdaRoundProblem.matmul("mm", x, w, null, q, false);
        assertEquals(64, p.columns());
        assertEquals(6, p.outChannels());
        AdaRoundResult res = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(16).withIterations(500));
        assertArrayEquals(new long[] {12, 6}, res.shape());
        assertTrue(res.mseAdaRound() <= res.mseRoundToNearest() * 1.05);
    }
}
