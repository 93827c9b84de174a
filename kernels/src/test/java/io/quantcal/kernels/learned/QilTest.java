package io.quantcal.kernels.learned;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * QIL: the transformer's pruning and clipping thresholds, α and β against the paper's formulas; the layer loss's
 * straight-through gradients with respect to c, d, γ (weights), c_X, d_X (input) and W against central finite
 * differences of the frozen-rounding surrogate, in double; on the synthetic W4A4 layer of {@link LsqTest}, QIL's
 * deployed layer reconstructs better than minmax, its codes and scales reproduce the reported MSE, and the pruning
 * ratio is the fraction of weights below c − d.
 */
class QilTest {

    @Test
    void thresholdsFollowTheFormulas() {
        double c = 0.5, d = 0.3;
        double alpha = 0.5 / d, beta = -0.5 * c / d + 0.5;
        for (double a : new double[] {0.2, 0.35, 0.5, 0.64, 0.8}) {
            assertEquals(alpha * a + beta, QilQuantizer.linear(a, c, d), 1e-12, "T at " + a);
        }
        assertEquals(0, QilQuantizer.linear(c - d, c, d), 1e-12);       // pruning threshold c − d maps to 0
        assertEquals(1, QilQuantizer.linear(c + d, c, d), 1e-12);       // clipping threshold c + d maps to 1
        assertEquals(-1, QilQuantizer.region(0.1999, c, d));
        assertEquals(0, QilQuantizer.region(0.2001, c, d));
        assertEquals(0, QilQuantizer.region(0.7999, c, d));
        assertEquals(1, QilQuantizer.region(0.8001, c, d));
        assertEquals(0, QilQuantizer.transform(0.1, c, d, 1.7));
        assertEquals(1, QilQuantizer.transform(0.95, c, d, 0.6));
        assertEquals(0.25, QilQuantizer.transform(0.5, c, d, 2), 1e-12);   // (0.5)^2
        // 4-bit weights, q_D = 7: k = round(7·0.25) = 2, value −2·(c + d)/7 for w = −0.5; clipped to ±(c + d)
        assertEquals(2, QilQuantizer.code(0.5, c, d, 2, 7));
        assertEquals(-2 * 0.8 / 7, QilQuantizer.value(-0.5, c, d, 2, 7), 1e-12);
        assertEquals(0.8, QilQuantizer.value(3, c, d, 2, 7), 1e-12);
        assertEquals(0, QilQuantizer.value(-0.15, c, d, 2, 7), 0);
        // γ = 1 with c = d: the symmetric uniform quantizer of step (c + d)/q_D
        assertEquals(Math.rint(0.37 / (0.6 / 7)) * 0.6 / 7, QilQuantizer.value(0.37, 0.3, 0.3, 1, 7), 1e-12);
    }

    static AdaRoundProblem problem(double outputMin, int groups, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cout = 4, depth = 5, cols = 9;
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextDouble() * 3 - 1.5);
        float[] x = new float[cols * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        float[] b = new float[cout];
        for (int i = 0; i < cout; i++) b[i] = (float) (r.nextDouble() - 0.5);
        return new AdaRoundProblem("fd", new long[] {cout, depth}, false, w, cout, depth, groups, b,
                new double[] {0.2, 0.15, 0.25, 0.3}, new int[4], -7, 7, x, cols, null, outputMin, Double.POSITIVE_INFINITY);
    }

    static final QuantParams INPUT = QuantParams.perTensor(QuantGrid.of(4, false), false, 0.07, 0);

    /** Both ways of computing the products: ND4J gemms and the Java loops small groups take. */
    static void check(AdaRoundProblem p, QuantParams input) {
        check(p, input, false);
        check(p, input, true);
    }

    static void check(AdaRoundProblem p, QuantParams input, boolean direct) {
        QilLoss loss = new QilLoss(p, input, p.columns(), DataType.DOUBLE, direct);
        int[] all = new int[p.columns()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        loss.selectColumns(all, all.length);
        int n = p.outChannels() * p.depth();
        double[] w = new double[n];
        for (int k = 0; k < n; k++) w[k] = p.weight()[k];
        double[] c = {0.6, 0.5, 0.7, 0.8}, d = {0.4, 0.45, 0.5, 0.3}, g = {0.8, 1.3, 1.0, 1.6};
        double cx = 0.5, dx = 0.3;
        loss.freeze(w, c, d, g, cx, dx);
        QilLoss.Gradient grad = new QilLoss.Gradient(4, n);
        assertTrue(loss.evaluate(w, c, d, g, cx, dx, grad) > 0);
        double[][] params = {c, d, g};
        double[][] grads = {grad.c, grad.d, grad.gamma};
        String[] names = {"c", "d", "gamma"};
        int nonzero = 0;
        for (int a = 0; a < 3; a++) {
            for (int s = 0; s < 4; s++) {
                double fd = fd(loss, w, c, d, g, cx, dx, params[a], s);
                assertEquals(fd, grads[a][s], 1e-8 + 1e-5 * Math.abs(fd), "dL/d" + names[a] + "[" + s + "]");
                if (Math.abs(fd) > 1e-5) nonzero++;
            }
        }
        // (a channel whose outputs the ReLU clips everywhere has none)
        assertTrue(nonzero >= 8, nonzero + " of 12 interval gradients are not zero");
        int pruned = 0, clipped = 0;
        for (int k = 0; k < n; k++) {
            double fd = fd(loss, w, c, d, g, cx, dx, w, k);
            assertEquals(fd, grad.weights[k], 1e-8 + 1e-5 * Math.abs(fd), "dL/dW[" + k + "]");
            int reg = QilQuantizer.region(Math.abs(w[k]), c[k / 5], d[k / 5]);
            if (reg != 0) assertEquals(0, grad.weights[k], 0, "no gradient to a pruned or clipped weight");
            if (reg < 0) pruned++;
            if (reg > 0) clipped++;
        }
        assertTrue(pruned > 0 && clipped > 0, pruned + " pruned, " + clipped + " clipped");
        double[] xs = {cx, dx};
        double[] gx = {grad.inputC, grad.inputD};
        for (int i = 0; i < 2; i++) {
            double keep = xs[i];
            xs[i] = keep + 1e-6;
            double lp = loss.evaluate(w, c, d, g, xs[0], xs[1], null);
            xs[i] = keep - 1e-6;
            double lm = loss.evaluate(w, c, d, g, xs[0], xs[1], null);
            xs[i] = keep;
            double fd = (lp - lm) / 2e-6;
            assertEquals(fd, gx[i], 1e-8 + 1e-5 * Math.abs(fd), "dL/d" + (i == 0 ? "c_X" : "d_X"));
            assertTrue(Math.abs(fd) > 1e-5, "input gradient " + i + " = " + fd);
        }
    }

    static double fd(QilLoss loss, double[] w, double[] c, double[] d, double[] g, double cx, double dx, double[] v, int i) {
        double keep = v[i], eps = 1e-6;
        v[i] = keep + eps;
        double lp = loss.evaluate(w, c, d, g, cx, dx, null);
        v[i] = keep - eps;
        double lm = loss.evaluate(w, c, d, g, cx, dx, null);
        v[i] = keep;
        return (lp - lm) / (2 * eps);
    }

    @Test
    void intervalAndWeightGradientsMatchFiniteDifferences() {
        check(problem(Double.NEGATIVE_INFINITY, 1, 1), INPUT);
        check(problem(0, 1, 2), INPUT);
        check(problem(Double.NEGATIVE_INFINITY, 2, 3), INPUT);
    }

    @Test
    void qilBeatsMinmaxOnTheSyntheticLayerAndItsCodesAreTheDeployedLayer() {
        QuantParams[] params = new QuantParams[2];
        AdaRoundProblem p = LsqTest.synthetic(params, 11);
        LearnResult r = QilOptimizer.optimize(p, params[1], new LearnConfig(600, 1e-2, 1e-3, false, 256, 3));
        System.out.println("QIL synthetic W4A4: " + r + ", qil mse " + r.qil().mseQil() + ", weights pruned "
                + r.qil().weightsPruned() + ", inputs pruned " + r.qil().inputsPruned() + ", gamma "
                + java.util.Arrays.toString(r.qil().gamma()));
        assertTrue(!r.keptInitial());
        assertTrue(r.mseLearned() < 0.6 * r.mseBaseline(), "QIL deployed mse " + r.mseLearned() + " vs minmax " + r.mseBaseline());
        assertEquals(r.mseLearned(), LsqTest.deployedMse(p, params[1], r), 1e-4 * r.mseLearned());
        int pruned = 0;
        for (int k = 0; k < p.weight().length; k++) {
            int ch = k / p.depth();
            if (Math.abs(p.weight()[k]) < r.qil().c()[ch] - r.qil().d()[ch]) {
                pruned++;
                assertEquals(0, r.integerWeights()[k], "a pruned weight's code");
            }
            assertEquals((float) ((r.qil().c()[ch] + r.qil().d()[ch]) / 7), r.weightScales()[ch], 1e-12);
        }
        assertEquals(pruned / (double) p.weight().length, r.qil().weightsPruned(), 1e-12);
    }
}
