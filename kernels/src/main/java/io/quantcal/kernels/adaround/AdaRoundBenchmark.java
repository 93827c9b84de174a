package io.quantcal.kernels.adaround;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Time per AdaRound iteration for a representative layer next to its floor: the same iteration's two gemms
 * (Ŷ = W̃ X_B and dL/dW̃ = G X_Bᵀ) as plain ND4J matmuls into preallocated outputs.
 *
 * <pre>
 * mvn -B -q -o -pl kernels compile exec:java -Dexec.mainClass=io.quantcal.kernels.adaround.AdaRoundBenchmark \
 *     -Dexec.args="cout=64 depth=576 columns=6272 iterations=60"
 * </pre>
 * Defaults: conv 64→64 3×3 (W [64, 576]), column batch 32·196 = 6272 (32 samples of 14×14), 60 timed
 * iterations after 10 of warm-up; the problem holds 2 batches' worth of columns.
 */
public final class AdaRoundBenchmark {

    private AdaRoundBenchmark() {}

    public static void main(String[] args) {
        int cout = 64, depth = 576, batch = 32 * 196, iterations = 60, warmup = 10;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            int v = Integer.parseInt(kv[1]);
            switch (kv[0]) {
                case "cout" -> cout = v;
                case "depth" -> depth = v;
                case "columns" -> batch = v;
                case "iterations" -> iterations = v;
                default -> throw new IllegalArgumentException("unknown argument " + kv[0] + " (cout, depth, columns, iterations)");
            }
        }
        int columns = 2 * batch;
        Random r = new Random(1);
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.05 * r.nextGaussian());
        float[] x = new float[columns * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.max(0, r.nextGaussian());
        double[] s = new double[cout];
        Arrays.fill(s, (float) (0.15 / 7));
        AdaRoundProblem p = new AdaRoundProblem("bench", new long[] {cout, depth / 9, 3, 3}, false, w, cout, depth, 1,
                new float[cout], s, new int[cout], -8, 7, x, columns, null, true);

        System.out.printf(Locale.ROOT, "layer: W [%d, %d], column batch %d, ReLU output, 4-bit per channel; %d threads (ND4J)%n",
                cout, depth, batch, Nd4j.getEnvironment().maxMasterThreads());
        AdaRoundConfig warm = AdaRoundConfig.defaults(batch).withIterations(warmup);
        AdaRoundOptimizer.optimize(p, warm);
        AdaRoundResult res = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(batch).withIterations(iterations));
        // the result's time includes set-up and the two full-column MSE passes: time those alone and subtract
        long fixed = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(batch).withIterations(1)).nanos();
        double adaMs = (res.nanos() - fixed) / 1e6 / (iterations - 1);

        // floor: the two gemms of one iteration, same shapes and layouts
        INDArray wt = Nd4j.rand(DataType.FLOAT, cout, depth).dup('c');
        INDArray xb = Nd4j.rand(DataType.FLOAT, depth, batch).dup('f');
        INDArray y = Nd4j.create(DataType.FLOAT, new long[] {cout, batch}, 'f');
        INDArray g = Nd4j.rand(DataType.FLOAT, cout, batch).dup('f');
        INDArray gw = Nd4j.create(DataType.FLOAT, new long[] {cout, depth}, 'c');
        for (int i = 0; i < warmup; i++) gemms(wt, xb, y, g, gw);
        long t0 = System.nanoTime();
        for (int i = 0; i < iterations; i++) gemms(wt, xb, y, g, gw);
        double floorMs = (System.nanoTime() - t0) / 1e6 / iterations;
        double gflop = 2.0 * 2 * cout * (double) depth * batch / 1e9;

        System.out.printf(Locale.ROOT, "AdaRound iteration: %8.2f ms%n", adaMs);
        System.out.printf(Locale.ROOT, "two gemms (floor):  %8.2f ms  (%.2f GFLOP, %.1f GFLOP/s)%n", floorMs, gflop, gflop / floorMs * 1e3);
        System.out.printf(Locale.ROOT, "ratio:              %8.2f%n", adaMs / floorMs);
        System.out.printf(Locale.ROOT, "(mse round-to-nearest %.4g, after %d iterations %.4g)%n", res.mseRoundToNearest(),
                iterations, res.mseAdaRound());
    }

    private static void gemms(INDArray wt, INDArray xb, INDArray y, INDArray g, INDArray gw) {
        Nd4j.exec(new Mmul(wt, xb, y, 1.0, 0.0, MMulTranspose.allFalse()));
        Nd4j.exec(new Mmul(g, xb, gw, 1.0, 0.0, new MMulTranspose(false, true, false)));
    }
}
