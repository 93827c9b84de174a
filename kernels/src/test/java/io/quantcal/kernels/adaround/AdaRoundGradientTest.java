package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** dL/dV of {@link AdaRoundLoss} against central finite differences, in double. */
class AdaRoundGradientTest {

    static AdaRoundProblem problem(boolean relu, int groups, long seed) {
        return problem(relu ? 0 : Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY, groups, seed);
    }

    static AdaRoundProblem problem(double outputMin, double outputMax, int groups, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cout = 4, depth = 5, cols = 9;
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextDouble() * 2 - 1);
        float[] x = new float[cols * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        float[] b = new float[cout];
        for (int i = 0; i < cout; i++) b[i] = (float) (r.nextDouble() - 0.5);
        double[] s = {0.2, 0.15, 0.25, 0.3};
        int[] z = {0, 1, -1, 0};
        return new AdaRoundProblem("fd", new long[] {cout, depth}, false, w, cout, depth, groups, b, s, z, -8, 7, x, cols,
                null, outputMin, outputMax);
    }

    /** The V at which {@link #check} differentiates. */
    static double[] checkPoint(int n) {
        SplittableRandom r = new SplittableRandom(7);
        double[] v = new double[n];
        for (int k = 0; k < n; k++) v[k] = r.nextDouble() * 4 - 2; // h strictly inside (0, 1)
        return v;
    }

    /** Both ways of computing the products: ND4J gemms per group and the Java loops small groups take. */
    static void check(AdaRoundProblem p, double lambda, double beta) {
        check(p, lambda, beta, false);
        check(p, lambda, beta, true);
    }

    static void check(AdaRoundProblem p, double lambda, double beta, boolean direct) {
        AdaRoundLoss loss = new AdaRoundLoss(p, p.columns(), DataType.DOUBLE, direct);
        int[] all = new int[p.columns()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        loss.selectColumns(all, all.length);
        int n = p.outChannels() * p.depth();
        double[] v = checkPoint(n);
        double[] grad = new double[n];
        double l0 = loss.evaluate(v, lambda, beta, grad).total();
        assertTrue(l0 > 0);
        double eps = 1e-6, maxErr = 0, maxGrad = 0;
        for (int k = 0; k < n; k++) {
            double keep = v[k];
            v[k] = keep + eps;
            double lp = loss.evaluate(v, lambda, beta, null).total();
            v[k] = keep - eps;
            double lm = loss.evaluate(v, lambda, beta, null).total();
            v[k] = keep;
            double fd = (lp - lm) / (2 * eps);
            maxErr = Math.max(maxErr, Math.abs(fd - grad[k]));
            maxGrad = Math.max(maxGrad, Math.abs(grad[k]));
            assertEquals(fd, grad[k], 1e-7 + 1e-5 * Math.abs(fd), "dL/dV[" + k + "]");
        }
        assertTrue(maxGrad > 1e-3, "gradient should not be trivially zero");
    }

    @Test
    void reconstructionOnly() {
        check(problem(false, 1, 1), 0, 20);
    }

    @Test
    void withTheRegularizerActive() {
        check(problem(false, 1, 2), 0.01, 20);
        check(problem(false, 1, 3), 1.0, 3.5);   // λ large enough that f_reg dominates
    }

    @Test
    void withReluOutput() {
        check(problem(true, 1, 4), 0, 20);
        check(problem(true, 1, 5), 0.5, 2);
    }

    /**
     * Pre-activations W̃ X + b at {@link #checkPoint}, by plain loops from eq. 22/23 (independent of the loss):
     * counts {below outputMin, inside, above outputMax}.
     */
    static int[] clipRegions(AdaRoundProblem p) {
        double[] v = checkPoint(p.outChannels() * p.depth());
        int kg = p.groupChannels(), depth = p.depth();
        int[] counts = new int[3];
        for (int col = 0; col < p.columns(); col++) {
            for (int c = 0; c < p.outChannels(); c++) {
                int g = c / kg;
                double s = p.scale(c), pre = p.bias()[c];
                for (int d = 0; d < depth; d++) {
                    double q = Math.floor(p.weight()[c * depth + d] / (float) s) + RectifiedSigmoid.h(v[c * depth + d]);
                    q = Math.max(p.qmin() - p.zeroPoint(c), Math.min(p.qmax() - p.zeroPoint(c), q));
                    pre += s * q * p.inputs()[col * p.groups() * depth + g * depth + d];
                }
                counts[pre < p.outputMin() ? 0 : pre > p.outputMax() ? 2 : 1]++;
            }
        }
        return counts;
    }

    @Test
    void withClippedOutputLikeRelu6() {
        // bounds that the pre-activations cross on both sides, so that both clipped regions and the inside occur
        for (long seed : new long[] {8, 9}) {
            AdaRoundProblem p = problem(-0.2, 0.3, 1, seed);
            int[] regions = clipRegions(p);
            assertTrue(regions[0] > 0 && regions[1] > 0 && regions[2] > 0,
                    "pre-activations below / inside / above the clip: " + java.util.Arrays.toString(regions));
            check(p, 0, 20);
            check(p, 0.5, 2);
        }
        AdaRoundProblem grouped = problem(0, 0.25, 2, 10);
        int[] regions = clipRegions(grouped);
        assertTrue(regions[0] > 0 && regions[1] > 0 && regions[2] > 0, java.util.Arrays.toString(regions));
        check(grouped, 0.1, 8);
    }

    @Test
    void blockDiagonalGroups() {
        check(problem(true, 2, 6), 0.1, 8);
        check(problem(false, 4, 7), 0.1, 8);
    }

    /** A depthwise problem (12 groups of one channel over 9 inputs): loss, gradient and default target agree on both paths. */
    @Test
    void depthwiseJavaLoopsEqualTheGemms() {
        SplittableRandom r = new SplittableRandom(12);
        int groups = 12, depth = 9, cols = 40;
        float[] w = new float[groups * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextDouble() * 2 - 1);
        float[] x = new float[cols * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        double[] s = new double[groups];
        for (int c = 0; c < groups; c++) s[c] = 0.1 + 0.01 * c;
        AdaRoundProblem p = new AdaRoundProblem("dw", new long[] {groups, 1, 3, 3}, false, w, groups, depth, groups,
                new float[groups], s, new int[groups], -8, 7, x, cols, null, 0, 6);
        AdaRoundLoss gemm = new AdaRoundLoss(p, 32, DataType.DOUBLE, false);
        AdaRoundLoss loops = new AdaRoundLoss(p, 32, DataType.DOUBLE, true);
        int[] sel = new int[32];
        for (int j = 0; j < 27; j++) sel[j] = (j * 11) % cols;
        gemm.selectColumns(sel, 27);
        loops.selectColumns(sel, 27);
        double[] v = checkPoint(w.length), ga = new double[w.length], gb = new double[w.length];
        double la = gemm.evaluate(v, 0.01, 5, ga).total(), lb = loops.evaluate(v, 0.01, 5, gb).total();
        assertTrue(la > 0);
        assertEquals(la, lb, 1e-12 * la);
        for (int k = 0; k < w.length; k++) assertEquals(ga[k], gb[k], 1e-12, "dL/dV[" + k + "]");
        assertTrue(java.util.Arrays.stream(ga).anyMatch(g -> Math.abs(g) > 1e-4));
    }
}
