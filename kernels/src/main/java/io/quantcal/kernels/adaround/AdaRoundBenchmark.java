package io.quantcal.kernels.adaround;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.runtime.KernelThreads;
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
 * (Ŷ = W̃ X_B and dL/dW̃ = G X_Bᵀ) as plain ND4J matmuls into preallocated outputs, in the loss's units of
 * {@link AdaRoundLoss#UNIT_ROWS} output channels, on one thread and on two (ND4J on one thread each, as a task runs).
 *
 * <pre>
 * mvn -B -q -o -pl kernels compile exec:java -Dexec.mainClass=io.quantcal.kernels.adaround.AdaRoundBenchmark \
 *     -Dexec.args="cout=64 depth=576 columns=6272 iterations=60"
 * </pre>
 * Defaults: conv 64→64 3×3 (W [64, 576]), column batch 32·196 = 6272 (32 samples of 14×14), 60 timed
 * iterations after 10 of warm-up; the problem holds 2 batches' worth of columns. {@code threads=1,2} (the default):
 * each thread count in turn for ND4J and the weight-wise loops, and the speed-ups against the first.
 */
public final class AdaRoundBenchmark {

    private AdaRoundBenchmark() {}

    public static void main(String[] args) {
        int cout = 64, depth = 576, batch = 32 * 196, iterations = 60, warmup = 10;
        int[] threadCounts = {1, 2};
        for (String a : args) {
            String[] kv = a.split("=", 2);
            if (kv[0].equals("threads")) {
                threadCounts = Arrays.stream(kv[1].split(",")).mapToInt(t -> Integer.parseInt(t.strip())).toArray();
                continue;
            }
            int v = Integer.parseInt(kv[1]);
            switch (kv[0]) {
                case "cout" -> cout = v;
                case "depth" -> depth = v;
                case "columns" -> batch = v;
                case "iterations" -> iterations = v;
                default -> throw new IllegalArgumentException("unknown argument " + kv[0] + " (cout, depth, columns, iterations, threads)");
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

        System.out.printf(Locale.ROOT, "layer: W [%d, %d], column batch %d, ReLU output, 4-bit per channel%n", cout, depth, batch);
        System.out.printf(Locale.ROOT, "%-8s %14s %14s %8s %14s%n", "threads", "iteration ms", "2 gemms ms", "ratio", "GFLOP/s gemms");
        double[] iter = new double[threadCounts.length], floor = new double[threadCounts.length];
        AdaRoundResult res = null;
        for (int ti = 0; ti < threadCounts.length; ti++) {
            int threads = threadCounts[ti];
            // as a lone task runs: ND4J on one thread, the task's gemm units and weight-wise loops on `threads` threads
            KernelThreads.limit(1);
            AdaRoundConfig warm = AdaRoundConfig.defaults(batch).withIterations(warmup);
            AdaRoundOptimizer.optimize(p, warm, threads);
            res = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(batch).withIterations(iterations), threads);
            // the result's time includes set-up and the two full-column MSE passes: time those alone and subtract
            long fixed = AdaRoundOptimizer.optimize(p, AdaRoundConfig.defaults(batch).withIterations(1), threads).nanos();
            iter[ti] = (res.nanos() - fixed) / 1e6 / (iterations - 1);

            // floor: the two gemms of one iteration, same shapes and layouts, in the same row units on the same threads
            int units = (cout + AdaRoundLoss.UNIT_ROWS - 1) / AdaRoundLoss.UNIT_ROWS;
            INDArray xb = Nd4j.rand(DataType.FLOAT, depth, batch).dup('f');
            INDArray[][] u = new INDArray[units][];
            for (int k = 0; k < units; k++) {
                int rows = Math.min(AdaRoundLoss.UNIT_ROWS, cout - k * AdaRoundLoss.UNIT_ROWS);
                u[k] = new INDArray[] {Nd4j.rand(DataType.FLOAT, rows, depth).dup('c'),
                        Nd4j.create(DataType.FLOAT, new long[] {rows, batch}, 'f'), Nd4j.rand(DataType.FLOAT, rows, batch).dup('f'),
                        Nd4j.create(DataType.FLOAT, new long[] {rows, depth}, 'c')};
            }
            try (ChunkedLoops loops = new ChunkedLoops(threads)) {
                ChunkedLoops.Chunk body = (k0, k1) -> {
                    for (int k = k0; k < k1; k++) gemms(u[k][0], xb, u[k][1], u[k][2], u[k][3]);
                    return 0;
                };
                for (int i = 0; i < warmup; i++) loops.forEach(units, 1, body);
                long t0 = System.nanoTime();
                for (int i = 0; i < iterations; i++) loops.forEach(units, 1, body);
                floor[ti] = (System.nanoTime() - t0) / 1e6 / iterations;
            }
            double gflop = 2.0 * 2 * cout * (double) depth * batch / 1e9;
            System.out.printf(Locale.ROOT, "%-8d %14.2f %14.2f %8.2f %14.1f%n", threads, iter[ti], floor[ti], iter[ti] / floor[ti],
                    gflop / floor[ti] * 1e3);
        }
        for (int ti = 1; ti < threadCounts.length; ti++) {
            System.out.printf(Locale.ROOT, "%d threads vs %d: AdaRound iteration %.2fx faster, its two gemms %.2fx%n",
                    threadCounts[ti], threadCounts[0], iter[0] / iter[ti], floor[0] / floor[ti]);
        }
        System.out.printf(Locale.ROOT, "(mse round-to-nearest %.4g, after %d iterations %.4g)%n", res.mseRoundToNearest(),
                iterations, res.mseAdaRound());
    }

    private static void gemms(INDArray wt, INDArray xb, INDArray y, INDArray g, INDArray gw) {
        Nd4j.exec(new Mmul(wt, xb, y, 1.0, 0.0, MMulTranspose.allFalse()));
        Nd4j.exec(new Mmul(g, xb, gw, 1.0, 0.0, new MMulTranspose(false, true, false)));
    }
}
