package io.quantcal.kernels.learned;

import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Time per LSQ iteration ({@link LsqOptimizer}: weight and input steps learned, W fine-tuned) next to its floor, for a
 * dense 3×3 conv and a depthwise 3×3 conv. The floor is the iteration's three gemms (Ŷ = ŴX̂, dL/dŴ = G X̂ᵀ,
 * dL/dX̂ = Ŵᵀ G) as one plain ND4J matmul each over the whole batch; for the depthwise layer that is the dense
 * [C, 9]·[9, B] gemm of one group scaled by C, the work of all groups at a single gemm's speed.
 *
 * <pre>
 * deploy/quantcal-bench learn [iterations=N] [columns=N]
 * </pre>
 */
public final class LearnBenchmark {

    private LearnBenchmark() {}

    public static void main(String[] args) {
        int iterations = 100, batch = 2048, warmup = 10;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            int v = Integer.parseInt(kv[1]);
            switch (kv[0]) {
                case "iterations" -> iterations = v;
                case "columns" -> batch = v;
                default -> throw new IllegalArgumentException("unknown argument " + kv[0] + " (iterations, columns)");
            }
        }
        System.out.printf(Locale.ROOT, "LSQ with update-weights, 4-bit per-channel weights, 4-bit input, batch %d columns, %d iterations"
                + " after %d of warm-up; ND4J threads %d%n", batch, iterations, warmup, Nd4j.getEnvironment().maxMasterThreads());
        System.out.printf(Locale.ROOT, "%-28s %12s %12s %8s %10s%n", "layer", "iteration ms", "floor ms", "ratio", "GFLOP/it");
        run("conv 3x3 64->64 (dense)", 64, 64 * 9, 1, batch, iterations, warmup);
        run("conv 3x3 96 depthwise", 96, 9, 96, batch, iterations, warmup);
    }

    private static void run(String name, int cout, int depth, int groups, int batch, int iterations, int warmup) {
        int columns = 2 * batch, kg = cout / groups;
        Random r = new Random(1);
        float[] w = new float[cout * depth];
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.05 * r.nextGaussian());
        float[] x = new float[columns * groups * depth];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.max(0, r.nextGaussian());
        double[] s = new double[cout];
        Arrays.fill(s, (float) (0.15 / 7));
        AdaRoundProblem p = new AdaRoundProblem("bench", new long[] {cout, depth / 9, 3, 3}, false, w, cout, depth, groups,
                new float[cout], s, new int[cout], -8, 7, x, columns, null, true);
        QuantParams input = QuantParams.perTensor(io.quantcal.kernels.quant.QuantGrid.of(4, false), false, 3.0 / 15, 0);
        LsqOptimizer.optimize(p, input, config(warmup, batch));
        LearnResult one = LsqOptimizer.optimize(p, input, config(1, batch));
        LearnResult res = LsqOptimizer.optimize(p, input, config(iterations + 1, batch));
        double ms = (res.nanos() - one.nanos()) / 1e6 / iterations;

        INDArray wt = Nd4j.rand(DataType.FLOAT, kg * groups, depth).dup('c');
        INDArray xb = Nd4j.rand(DataType.FLOAT, depth, batch).dup('f');
        INDArray y = Nd4j.create(DataType.FLOAT, new long[] {kg * groups, batch}, 'f');
        INDArray gw = Nd4j.create(DataType.FLOAT, new long[] {kg * groups, depth}, 'c');
        INDArray gx = Nd4j.create(DataType.FLOAT, new long[] {depth, batch}, 'f');
        for (int i = 0; i < warmup; i++) gemms(wt, xb, y, gw, gx);
        long t0 = System.nanoTime();
        for (int i = 0; i < iterations; i++) gemms(wt, xb, y, gw, gx);
        // a depthwise layer's groups share one dense gemm here ([C, 9]·[9, B]): C times one group's work
        double floorMs = (System.nanoTime() - t0) / 1e6 / iterations;
        double gflop = 3 * 2.0 * cout * (double) depth * batch / 1e9;
        System.out.printf(Locale.ROOT, "%-28s %12.2f %12.2f %7.1fx %10.3f%n", name, ms, floorMs, ms / floorMs, gflop);
    }

    private static LearnConfig config(int iterations, int batch) {
        return new LearnConfig(iterations, 1e-2, 1e-3, true, batch, 1);
    }

    private static void gemms(INDArray w, INDArray x, INDArray y, INDArray gw, INDArray gx) {
        Nd4j.exec(new Mmul(w, x, y, 1.0, 0.0, MMulTranspose.allFalse()));
        Nd4j.exec(new Mmul(y, x, gw, 1.0, 0.0, new MMulTranspose(false, true, false)));
        Nd4j.exec(new Mmul(w, y, gx, 1.0, 0.0, new MMulTranspose(true, false, false)));
    }
}
