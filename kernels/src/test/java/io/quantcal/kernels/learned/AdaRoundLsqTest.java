package io.quantcal.kernels.learned;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.adaround.AdaRoundResult;
import io.quantcal.kernels.adaround.RectifiedSigmoid;
import io.quantcal.kernels.quant.QuantParams;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class AdaRoundLsqTest {

    /** dL/dV, dL/ds_w and dL/ds_a (input rounding frozen) against central differences, λ on; both product paths. */
    static void check(AdaRoundProblem p, QuantParams input, boolean direct) {
        AdaRoundLsqLoss loss = new AdaRoundLsqLoss(p, input, p.columns(), DataType.DOUBLE, direct);
        int[] all = new int[p.columns()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        loss.selectColumns(all, all.length);
        int n = p.outChannels() * p.depth();
        SplittableRandom r = new SplittableRandom(5);
        double[] v = new double[n];
        for (int k = 0; k < n; k++) v[k] = r.nextDouble() * 3 - 1.5;   // h(V) inside (0, 1) and at its clipped ends
        double[] sw = p.scale().clone();
        for (int c = 0; c < sw.length; c++) sw[c] *= 0.9 + 0.05 * c;
        double sa = input == null ? Double.NaN : input.scale(0) * 1.1;
        if (input != null) loss.freezeInput(sa);
        double lambda = 0.01, beta = 7;
        AdaRoundLsqLoss.Gradient g = new AdaRoundLsqLoss.Gradient(sw.length, n);
        double l0 = loss.evaluate(v, sw, sa, lambda, beta, g);
        assertTrue(l0 > 0);
        double eps = 1e-6;
        int nonzero = 0;
        for (int k = 0; k < n; k++) {
            double keep = v[k];
            v[k] = keep + eps;
            double lp = loss.evaluate(v, sw, sa, lambda, beta, null);
            v[k] = keep - eps;
            double lm = loss.evaluate(v, sw, sa, lambda, beta, null);
            v[k] = keep;
            double fd = (lp - lm) / (2 * eps);
            assertEquals(fd, g.v[k], 1e-8 + 1e-5 * Math.abs(fd), "dL/dV[" + k + "]");
            if (Math.abs(fd) > 1e-4) nonzero++;
        }
        assertTrue(nonzero > n / 2, nonzero + " of " + n + " V gradients non-zero");
        for (int c = 0; c < sw.length; c++) {
            double keep = sw[c];
            sw[c] = keep + eps;
            double lp = loss.evaluate(v, sw, sa, lambda, beta, null);
            sw[c] = keep - eps;
            double lm = loss.evaluate(v, sw, sa, lambda, beta, null);
            sw[c] = keep;
            double fd = (lp - lm) / (2 * eps);
            double gScale = 1 / Math.sqrt(p.depth() * (double) (p.qmax() - p.zeroPoint(c)));
            assertEquals(fd * gScale, g.weightSteps[c], 1e-8 + 1e-5 * Math.abs(fd * gScale), "dL/ds_w[" + c + "]");
            assertTrue(Math.abs(fd) > 1e-4, "dL/ds_w[" + c + "] should not be trivially zero, got " + fd);
        }
        if (input != null) {
            double lp = loss.evaluate(v, sw, sa + eps, lambda, beta, null);
            double lm = loss.evaluate(v, sw, sa - eps, lambda, beta, null);
            double fd = (lp - lm) / (2 * eps);
            double gScale = 1 / Math.sqrt(p.groups() * p.depth() * (double) (input.qmax() - input.zeroPoint(0)));
            assertEquals(fd * gScale, g.inputStep, 1e-8 + 1e-5 * Math.abs(fd * gScale), "dL/ds_a");
            assertTrue(Math.abs(fd) > 1e-4, "dL/ds_a should not be trivially zero, got " + fd);
        }
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        for (boolean direct : new boolean[] {false, true}) {
            check(LsqTest.problem(Double.NEGATIVE_INFINITY, 1, 21), LsqTest.INPUT, direct);
            check(LsqTest.problem(0, 2, 22), LsqTest.INPUT, direct);
            check(LsqTest.problem(Double.NEGATIVE_INFINITY, 1, 23), null, direct);
        }
    }

    @Test
    void updateWeightsIsRefused() {
        QuantParams[] params = new QuantParams[2];
        AdaRoundProblem p = LsqTest.synthetic(params, 11);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AdaRoundLsqOptimizer.optimize(p,
                params[1], new LearnConfig(10, 1e-2, 1e-3, true, 256, 3), AdaRoundConfig.defaults(256)));
        assertTrue(e.getMessage().contains("synthetic") && e.getMessage().contains("update-weights"), e.getMessage());
    }

    /**
     * On the synthetic W4A4 layer: the combination beats LSQ's steps alone and AdaRound's rounding alone (the latter
     * scored with the same minmax input quantizer), its codes are ⌊W/s₀⌋ or ⌊W/s₀⌋ + 1 (AdaRound's), and what the table
     * and the QDQ model carry (codes, steps) reproduce the reported MSE.
     */
    @Test
    void roundingAndStepsTogetherBeatEachAlone() {
        QuantParams[] params = new QuantParams[2];
        AdaRoundProblem p = LsqTest.synthetic(params, 11);
        LearnConfig cfg = new LearnConfig(600, 1e-2, 1e-3, false, 256, 3);
        LearnResult both = AdaRoundLsqOptimizer.optimize(p, params[1], cfg, AdaRoundConfig.defaults(256));
        LearnResult lsq = LsqOptimizer.optimize(p, params[1], cfg);
        System.out.println("AdaRound + LSQ synthetic W4A4: " + both + "\nLSQ: " + lsq);
        assertFalse(both.keptInitial());
        assertTrue(both.mseLearned() < lsq.mseLearned(), "AdaRound + LSQ " + both.mseLearned() + " vs LSQ " + lsq.mseLearned());
        assertEquals(both.mseLearned(), LsqTest.deployedMse(p, params[1], both), 1e-4 * both.mseLearned());

        // AdaRound alone: minmax steps, its own rounding, the input through the same minmax uint4 grid
        AdaRoundResult ada = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(256).withIterations(600).withSeed(3));
        double adaMse = LsqTest.deployedMse(p, params[1], new LearnResult(ada.integerWeights(), new long[] {16, 64},
                params[0].scale(), params[1].scale(0), 0, 0, false, new double[0], 0, 0, null));
        assertTrue(both.mseLearned() < adaMse, "AdaRound + LSQ " + both.mseLearned() + " vs AdaRound " + adaMse);

        int depth = p.depth();
        for (int k = 0; k < both.integerWeights().length; k++) {
            double f = Math.floor(p.weight()[k] / (float) p.scale(k / depth));
            int q = both.integerWeights()[k];
            assertTrue(q == Math.max(-7, Math.min(7, f)) || q == Math.max(-7, Math.min(7, f + 1)),
                    "code " + q + " of weight " + k + " is neither floor nor ceil of W/s0 = " + p.weight()[k] / p.scale(k / depth));
        }
        // seeded
        LearnResult again = AdaRoundLsqOptimizer.optimize(p, params[1], cfg, AdaRoundConfig.defaults(256));
        assertArrayEquals(both.integerWeights(), again.integerWeights());
        assertArrayEquals(both.weightScales(), again.weightScales());
        assertEquals(both.inputScale(), again.inputScale());
        assertTrue(RectifiedSigmoid.h(10) == 1 && RectifiedSigmoid.h(-10) == 0);
    }
}
