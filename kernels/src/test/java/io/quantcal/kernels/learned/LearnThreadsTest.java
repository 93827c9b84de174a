package io.quantcal.kernels.learned;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.SplittableRandom;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;

/**
 * A lone learn task on several threads: the reconstruction's column units, the quantizers' element-wise loops and
 * their chunked sums give the same result bit for bit as on one thread, for LSQ (per-channel and per-tensor weight
 * steps, with and without weight updates), QIL and LSQ + AdaRound, on a dense layer that spans several column units
 * and chunks and on a depthwise one (the direct path).
 */
class LearnThreadsTest {

    /** W [cout, depth] Laplace-like, X ≥ 0 with rare outliers, 4-bit minmax parameters (per channel or per tensor). */
    static AdaRoundProblem problem(int cout, int depth, int groups, int cols, boolean perChannel, QuantParams[] input, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int kg = cout / groups;
        float[] w = new float[cout * depth];
        double[] clip = new double[perChannel ? cout : 1];
        for (int i = 0; i < w.length; i++) {
            double u = r.nextDouble() - 0.5;
            w[i] = (float) (-0.05 * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
            int c = perChannel ? i / depth : 0;
            clip[c] = Math.max(clip[c], Math.abs(w[i]));
        }
        float[] x = new float[cols * groups * depth];
        float xmax = 0;
        for (int i = 0; i < x.length; i++) {
            double v = Math.max(0, r.nextGaussian() + 0.3);
            if (r.nextDouble() < 0.002) v *= 6;
            x[i] = (float) v;
            xmax = Math.max(xmax, x[i]);
        }
        QuantParams wq = SymmetricQuantizer.fromClips(4, true, 0, clip);
        input[0] = QuantParams.perTensor(QuantGrid.of(4, false), false, xmax / 15.0, 0);
        long[] shape = groups == 1 ? new long[] {cout, depth} : new long[] {cout, depth / 9, 3, 3};
        float[] b = new float[cout];
        for (int c = 0; c < cout; c++) b[c] = (float) (0.05 * r.nextGaussian());
        return new AdaRoundProblem("p", shape, false, w, cout, depth, groups, b, wq.scale(), wq.zeroPoint(), wq.qmin(), wq.qmax(),
                x, cols, null, 0, Double.POSITIVE_INFINITY);
    }

    static void same(String what, IntFunction<LearnResult> run) {
        LearnResult one = run.apply(1), three = run.apply(3);
        assertArrayEquals(one.integerWeights(), three.integerWeights(), what);
        assertArrayEquals(one.weightScales(), three.weightScales(), what);
        assertEquals(one.inputScale(), three.inputScale(), what);
        assertArrayEquals(one.lossHistory(), three.lossHistory(), what);
        assertEquals(one.mseLearned(), three.mseLearned(), what);
        assertEquals(one.mseBaseline(), three.mseBaseline(), what);
        assertTrue(one.mseLearned() <= one.mseBaseline(), what + ": " + one);
    }

    @Test
    void theSameResultOnOneAndOnSeveralThreads() {
        // dense: 64 x 288 weights (2 chunks), a 1100-column batch (units of 512, 512, 76), 1100 x 288 input values
        // depthwise: 256 groups of 9 (the direct path, several chunks of groups)
        Object[][] shapes = {{64, 288, 1, 1100, 1100}, {256, 9, 256, 300, 300}};
        for (Object[] sh : shapes) {
            int cout = (int) sh[0], depth = (int) sh[1], groups = (int) sh[2], cols = (int) sh[3], batch = (int) sh[4];
            for (boolean perChannel : new boolean[] {true, false}) {
                QuantParams[] in = new QuantParams[1];
                AdaRoundProblem p = problem(cout, depth, groups, cols, perChannel, in, 5);
                String what = cout + "x" + depth + " groups " + groups + (perChannel ? " per channel" : " per tensor");
                LearnConfig steps = new LearnConfig(20, 1e-2, 1e-3, false, batch, 3);
                LearnConfig weights = new LearnConfig(20, 1e-2, 1e-3, true, batch, 3);
                same(what + ", LSQ", t -> LsqOptimizer.optimize(p, in[0], steps, t));
                same(what + ", LSQ + weights", t -> LsqOptimizer.optimize(p, in[0], weights, t));
                same(what + ", QIL", t -> QilOptimizer.optimize(p, in[0], steps, t));
                same(what + ", LSQ + AdaRound", t -> AdaRoundLsqOptimizer.optimize(p, in[0], steps,
                        AdaRoundConfig.defaults(batch).withIterations(20), t));
            }
        }
    }
}
