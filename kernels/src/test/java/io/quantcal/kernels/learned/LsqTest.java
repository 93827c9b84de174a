package io.quantcal.kernels.learned;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * LSQ: the quantizer's step gradient (eq. 3) on hand-worked values; the layer loss's straight-through gradients with
 * respect to the weight steps, the input step and W against central finite differences of the frozen-rounding
 * surrogate, in double; and on a synthetic layer with heavy-tailed weights at W4A4, learned steps reconstruct better
 * than minmax, with codes that dequantize to exactly what the result reports.
 */
class LsqTest {

    @Test
    void stepGradientIsEq3OfThePaper() {
        // w = 0.37, s = 0.1: v = 3.7 inside [-8, 7], round 4: ∂ŵ/∂s = -3.7 + 4 = 0.3, ŵ = 0.4
        assertEquals(0.3, LsqQuantizer.stepGradient(0.37, 0.1, -8, 7), 1e-6);
        assertEquals(0.4, LsqQuantizer.value(0.37, 0.1, -8, 7), 1e-6);
        assertTrue(LsqQuantizer.inside(0.37, 0.1, -8, 7));
        // v = -3.2: round -3, gradient +0.2
        assertEquals(0.2, LsqQuantizer.stepGradient(-0.32, 0.1, -8, 7), 1e-6);
        // below the grid: v = -9.2 <= -Q_N = -8: gradient -Q_N = -8, value -0.8, no gradient to w
        assertEquals(-8, LsqQuantizer.stepGradient(-0.92, 0.1, -8, 7));
        assertEquals(-0.8, LsqQuantizer.value(-0.92, 0.1, -8, 7), 1e-6);
        assertFalse(LsqQuantizer.inside(-0.92, 0.1, -8, 7));
        // above: v = 7.5 >= Q_P = 7: gradient Q_P
        assertEquals(7, LsqQuantizer.stepGradient(0.75, 0.1, -8, 7));
        assertFalse(LsqQuantizer.inside(0.75, 0.1, -8, 7));
        // a tie rounds half to even, as QuantizeLinear: v = 2.5 -> 2, gradient 2 - 2.5
        assertEquals(-0.5, LsqQuantizer.stepGradient(0.625, 0.25, -8, 7), 1e-12);
        // g = 1/sqrt(N Q_P)
        assertEquals(1 / Math.sqrt(64 * 7.0), LsqQuantizer.gradientScale(64, -8, 7), 1e-15);
        assertEquals(1 / Math.sqrt(10 * 15.0), LsqQuantizer.gradientScale(10, 0, 15), 1e-15);
    }

    static AdaRoundProblem problem(double outputMin, int groups, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cout = 4, depth = 5, cols = 9;
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextDouble() * 5 - 2.5);
        float[] x = new float[cols * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        float[] b = new float[cout];
        for (int i = 0; i < cout; i++) b[i] = (float) (r.nextDouble() - 0.5);
        double[] s = {0.2, 0.15, 0.25, 0.3};
        int[] z = {0, 1, -1, 0};
        return new AdaRoundProblem("fd", new long[] {cout, depth}, false, w, cout, depth, groups, b, s, z, -8, 7, x, cols,
                null, outputMin, Double.POSITIVE_INFINITY);
    }

    /** uint4 input grid with zero point 3: x in [-1, 1] falls below, inside and above it. */
    static final QuantParams INPUT = QuantParams.perTensor(QuantGrid.of(4, false), false, 0.07, 3);

    /** Both ways of computing the products: ND4J gemms and the Java loops small groups take. */
    static void check(AdaRoundProblem p, QuantParams input) {
        check(p, input, false);
        check(p, input, true);
    }

    static void check(AdaRoundProblem p, QuantParams input, boolean direct) {
        LsqLoss loss = new LsqLoss(p, input, p.columns(), DataType.DOUBLE, direct);
        int[] all = new int[p.columns()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        loss.selectColumns(all, all.length);
        int n = p.outChannels() * p.depth();
        double[] w = new double[n];
        for (int k = 0; k < n; k++) w[k] = p.weight()[k];
        double[] sw = p.scale().clone();
        double sa = input == null ? Double.NaN : input.scale(0);
        loss.freeze(w, sw, sa);
        LsqLoss.Gradient g = new LsqLoss.Gradient(sw.length, n);
        double l0 = loss.evaluate(w, sw, sa, g);
        assertTrue(l0 > 0);
        double eps = 1e-6;
        int outside = 0;
        for (int c = 0; c < sw.length; c++) {
            double keep = sw[c];
            sw[c] = keep + eps;
            double lp = loss.evaluate(w, sw, sa, null);
            sw[c] = keep - eps;
            double lm = loss.evaluate(w, sw, sa, null);
            sw[c] = keep;
            double fd = (lp - lm) / (2 * eps);
            double gScale = 1 / Math.sqrt(p.depth() * (double) (p.qmax() - p.zeroPoint(c)));
            assertEquals(fd * gScale, g.weightSteps[c], 1e-8 + 1e-5 * Math.abs(fd * gScale), "dL/ds_w[" + c + "]");
            assertTrue(Math.abs(fd) > 1e-4, "dL/ds_w[" + c + "] should not be trivially zero, got " + fd);
        }
        for (int k = 0; k < n; k++) {
            double keep = w[k];
            w[k] = keep + eps;
            double lp = loss.evaluate(w, sw, sa, null);
            w[k] = keep - eps;
            double lm = loss.evaluate(w, sw, sa, null);
            w[k] = keep;
            double fd = (lp - lm) / (2 * eps);
            assertEquals(fd, g.weights[k], 1e-8 + 1e-5 * Math.abs(fd), "dL/dW[" + k + "]");
            if (!LsqQuantizer.inside(w[k], sw[k / p.depth()], p.qmin() - p.zeroPoint(k / p.depth()),
                    p.qmax() - p.zeroPoint(k / p.depth()))) {
                outside++;
                assertEquals(0, g.weights[k], "no gradient to a weight outside the grid");
            }
        }
        assertTrue(outside > 0, "the check point has weights outside the grid");
        if (input != null) {
            double lp = loss.evaluate(w, sw, sa + eps, null);
            double lm = loss.evaluate(w, sw, sa - eps, null);
            double fd = (lp - lm) / (2 * eps);
            double gScale = 1 / Math.sqrt(p.groups() * p.depth() * (double) (input.qmax() - input.zeroPoint(0)));
            assertEquals(fd * gScale, g.inputStep, 1e-8 + 1e-5 * Math.abs(fd * gScale), "dL/ds_a");
            assertTrue(Math.abs(fd) > 1e-4, "dL/ds_a should not be trivially zero, got " + fd);
        }
    }

    @Test
    void stepAndWeightGradientsMatchFiniteDifferences() {
        check(problem(Double.NEGATIVE_INFINITY, 1, 1), INPUT);
        check(problem(Double.NEGATIVE_INFINITY, 1, 2), null);
    }

    /**
     * A depthwise layer (12 groups of one output channel over 9 inputs), which LsqLoss computes with Java loops: its
     * loss and every gradient equal the ND4J gemms' (both in double), also for a batch with unselected columns.
     */
    @Test
    void depthwiseJavaLoopsEqualTheGemms() {
        SplittableRandom r = new SplittableRandom(7);
        int groups = 12, depth = 9, cols = 40;
        float[] w = new float[groups * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextDouble() * 2 - 1);
        float[] x = new float[cols * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.max(0, r.nextDouble() * 2 - 0.5);
        float[] b = new float[groups];
        double[] s = new double[groups];
        for (int c = 0; c < groups; c++) {
            b[c] = (float) (r.nextDouble() - 0.5);
            s[c] = 0.1 + 0.02 * c;
        }
        AdaRoundProblem p = new AdaRoundProblem("dw", new long[] {groups, 1, 3, 3}, false, w, groups, depth, groups, b, s,
                new int[groups], -8, 7, x, cols, null, 0, 6);
        assertEquals(1, p.groupChannels());
        LsqLoss gemm = new LsqLoss(p, INPUT, 32, DataType.DOUBLE, false);
        LsqLoss loops = new LsqLoss(p, INPUT, 32, DataType.DOUBLE, true);
        int[] cols29 = new int[32];
        for (int j = 0; j < 29; j++) cols29[j] = (j * 7) % cols;
        gemm.selectColumns(cols29, 29);
        loops.selectColumns(cols29, 29);
        double[] wd = new double[w.length];
        for (int k = 0; k < w.length; k++) wd[k] = w[k];
        LsqLoss.Gradient ga = new LsqLoss.Gradient(groups, w.length), gb = new LsqLoss.Gradient(groups, w.length);
        double la = gemm.evaluate(wd, s, 0.05, ga);
        double lb = loops.evaluate(wd, s, 0.05, gb);
        assertTrue(la > 0);
        assertEquals(la, lb, 1e-12 * la);
        assertArrayEquals(ga.weightSteps, gb.weightSteps, 1e-12);
        assertArrayEquals(ga.weights, gb.weights, 1e-12);
        assertEquals(ga.inputStep, gb.inputStep, 1e-12);
        assertTrue(Math.abs(ga.inputStep) > 1e-6 && java.util.Arrays.stream(ga.weights).anyMatch(v -> Math.abs(v) > 1e-6));
    }

    @Test
    void withReluOutputAndGroups() {
        check(problem(0, 1, 3), INPUT);
        check(problem(0, 2, 4), INPUT);
        check(problem(Double.NEGATIVE_INFINITY, 2, 5), INPUT);
    }

    /** A Gemm layer [16 x 64] with Laplace weights (a few large ones) and ReLU'd Gaussian inputs with outliers. */
    static AdaRoundProblem synthetic(QuantParams[] params, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cout = 16, depth = 64, cols = 1024;
        float[] w = new float[cout * depth];
        double[] clip = new double[cout];
        for (int i = 0; i < w.length; i++) {
            double u = r.nextDouble() - 0.5;
            w[i] = (float) (-0.05 * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
            clip[i / depth] = Math.max(clip[i / depth], Math.abs(w[i]));
        }
        float[] x = new float[cols * depth];
        float xmax = 0;
        for (int i = 0; i < x.length; i++) {
            double v = Math.max(0, r.nextGaussian() + 0.3);
            if (r.nextDouble() < 0.002) v *= 6;
            x[i] = (float) v;
            xmax = Math.max(xmax, x[i]);
        }
        QuantParams wq = SymmetricQuantizer.fromClips(4, true, 0, clip);           // minmax, per channel
        params[0] = wq;
        params[1] = QuantParams.perTensor(QuantGrid.of(4, false), false, xmax / 15.0, 0); // minmax, uint4
        return new AdaRoundProblem("synthetic", new long[] {cout, depth}, false, w, cout, depth, 1, null, wq.scale(),
                wq.zeroPoint(), wq.qmin(), wq.qmax(), x, cols, null, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY);
    }

    /** The MSE of the deployed layer: X through QuantizeLinear/DequantizeLinear, W as (q − Z)·s from the codes. */
    static double deployedMse(AdaRoundProblem p, QuantParams input, LearnResult r) {
        int cout = p.outChannels(), depth = p.depth();
        QuantParams wq = new QuantParams(QuantGrid.of(4, true).equals(input.grid()) ? input.grid()
                : SymmetricQuantizer.grid(4, true), true, 0, r.weightScales(), new int[cout]);
        float[] w = FakeQuant.dequantize(r.integerWeights(), new long[] {cout, depth}, wq);
        float[] x = FakeQuant.apply(p.inputs(), new long[] {p.columns(), depth}, input.withScales(new double[] {r.inputScale()}));
        double sum = 0;
        for (int j = 0; j < p.columns(); j++) {
            for (int c = 0; c < cout; c++) {
                double y = 0, yf = 0;
                for (int d = 0; d < depth; d++) {
                    y += (double) w[c * depth + d] * x[j * depth + d];
                    yf += (double) p.weight()[c * depth + d] * p.inputs()[j * depth + d];
                }
                sum += (y - yf) * (y - yf);
            }
        }
        return sum / ((double) p.columns() * cout);
    }

    @Test
    void learnedStepsBeatMinmaxOnASyntheticLayer() {
        QuantParams[] params = new QuantParams[2];
        AdaRoundProblem p = synthetic(params, 11);
        LearnConfig cfg = new LearnConfig(600, 1e-2, 1e-2, false, 256, 3);
        LearnResult r = LsqOptimizer.optimize(p, params[1], cfg);
        System.out.println("LSQ synthetic W4A4: " + r);
        assertFalse(r.keptInitial());
        assertTrue(r.mseLearned() < 0.5 * r.mseBaseline(), "LSQ mse " + r.mseLearned() + " vs minmax " + r.mseBaseline());
        // both minmax steps shrink: the tails cost less than the resolution of the bulk at 4 bits
        assertTrue(r.inputScale() < params[1].scale(0), "input step " + r.inputScale() + " vs minmax " + params[1].scale(0));
        int smaller = 0;
        for (int c = 0; c < 16; c++) if (r.weightScales()[c] < params[0].scale(c)) smaller++;
        assertTrue(smaller >= 12, smaller + " of 16 weight steps below minmax");
        // what the table and the QDQ model carry reproduces the reported MSE
        assertEquals(r.mseLearned(), deployedMse(p, params[1], r), 1e-4 * r.mseLearned());
        assertEquals(r.mseBaseline(), deployedMse(p, params[1], new LearnResult(
                FakeQuant.quantize(p.weight(), new long[] {16, 64}, params[0]), new long[] {16, 64}, params[0].scale(),
                params[1].scale(0), 0, 0, true, new double[0], 0, 0, null)), 1e-4 * r.mseBaseline());

        // fine-tuning W through the straight-through estimator lowers it further, and stays on the grid
        LearnResult u = LsqOptimizer.optimize(p, params[1], new LearnConfig(600, 1e-2, 1e-3, true, 256, 3));
        System.out.println("LSQ + weights synthetic W4A4: " + u);
        assertTrue(u.mseLearned() < r.mseLearned(), "with W updates " + u.mseLearned() + " vs steps only " + r.mseLearned());
        assertEquals(u.mseLearned(), deployedMse(p, params[1], u), 1e-4 * u.mseLearned());
        for (int q : u.integerWeights()) assertTrue(q >= -7 && q <= 7, "code " + q);

        // seeded: the same problem and config give the same result
        LearnResult again = LsqOptimizer.optimize(p, params[1], cfg);
        assertArrayEquals(r.integerWeights(), again.integerWeights());
        assertArrayEquals(r.weightScales(), again.weightScales());
        assertEquals(r.inputScale(), again.inputScale());
    }
}
