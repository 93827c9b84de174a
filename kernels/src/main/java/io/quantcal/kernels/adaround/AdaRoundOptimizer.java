package io.quantcal.kernels.adaround;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.quant.AffineQuantizer;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * AdaRound for one layer (Nagel et al. 2020, sec. 4): Adam over V on the batch loss of {@link AdaRoundLoss},
 * λ switched on and β annealed by {@link BetaSchedule}, then h(V) hardened to {0, 1}. One call per layer:
 * {@link #optimize} is what a Spark task runs.
 */
public final class AdaRoundOptimizer {

    /** Adam's moment decays and ε: PyTorch's defaults, which AIMET's torch.optim.Adam uses. */
    static final double ADAM_BETA1 = 0.9, ADAM_BETA2 = 0.999, ADAM_EPS = 1e-8;

    private AdaRoundOptimizer() {}

    public static AdaRoundResult optimize(AdaRoundProblem problem, AdaRoundConfig config) {
        return optimize(problem, config, 1);
    }

    /**
     * {@link #optimize(AdaRoundProblem, AdaRoundConfig)} with the weight-wise loops (rectified sigmoid, regularizer,
     * gradient, Adam) on {@code threads} threads: the same result bit for bit, for a task that has cores to itself.
     */
    public static AdaRoundResult optimize(AdaRoundProblem problem, AdaRoundConfig config, int threads) {
        try (ChunkedLoops loops = threads > 1 ? new ChunkedLoops(threads) : ChunkedLoops.SEQUENTIAL) {
            return optimize(problem, config, loops);
        }
    }

    private static AdaRoundResult optimize(AdaRoundProblem problem, AdaRoundConfig config, ChunkedLoops loops) {
        long t0 = System.nanoTime();
        AdaRoundLoss loss = new AdaRoundLoss(problem, config.batchColumns(), DataType.FLOAT, loops);
        int n = problem.outChannels() * problem.depth();
        double[] floorW = loss.floorWeights();
        float[] w = problem.weight();

        // V₀: h(V₀) = W/s − ⌊W/s⌋, so that W̃ starts at W (AIMET's alpha initialisation)
        double[] v = new double[n];
        for (int k = 0; k < n; k++) {
            float s = (float) problem.scale(k / problem.depth());
            v[k] = RectifiedSigmoid.inverse(w[k] / s - floorW[k]);
        }

        BetaSchedule schedule = config.schedule();
        int batch = loss.batchColumns();
        int columns = problem.columns();
        ColumnBatches batches = new ColumnBatches(columns, batch, config.seed());
        double[] grad = new double[n], m = new double[n], m2 = new double[n];
        int iterations = config.iterations();
        double[] history = new double[(iterations + AdaRoundConfig.HISTORY_EVERY - 1) / AdaRoundConfig.HISTORY_EVERY];
        double lr = config.learningRate();
        double b1t = 1, b2t = 1;

        for (int t = 0; t < iterations; t++) {
            loss.selectColumns(batches.next(), batch);
            double lambda = schedule.regularizerActive(t) ? config.lambda() : 0;
            AdaRoundLoss.Value value = loss.evaluate(v, lambda, schedule.beta(t), grad);
            if (t % AdaRoundConfig.HISTORY_EVERY == 0) history[t / AdaRoundConfig.HISTORY_EVERY] = value.total();
            // Adam (Kingma & Ba 2015, Algorithm 1)
            b1t *= ADAM_BETA1;
            b2t *= ADAM_BETA2;
            double stepSize = lr / (1 - b1t);
            double c2 = 1 / Math.sqrt(1 - b2t);
            loops.forEach(n, AdaRoundLoss.WEIGHT_CHUNK, (from, to) -> {
                for (int k = from; k < to; k++) {
                    double g = grad[k];
                    m[k] = ADAM_BETA1 * m[k] + (1 - ADAM_BETA1) * g;
                    m2[k] = ADAM_BETA2 * m2[k] + (1 - ADAM_BETA2) * g * g;
                    v[k] -= stepSize * m[k] / (Math.sqrt(m2[k]) * c2 + ADAM_EPS);
                }
                return 0;
            });
        }

        // Hardening (sec. 4, "at the end of optimization h(V) is 0 or 1"): h ≥ 0.5 rounds up
        int[] codes = new int[n];
        double[] wAda = new double[n];
        double[] wRtn = new double[n];
        for (int k = 0; k < n; k++) {
            int c = k / problem.depth();
            float s = (float) problem.scale(c);
            int z = problem.zeroPoint(c);
            double up = RectifiedSigmoid.h(v[k]) >= 0.5 ? 1 : 0;
            double q = Math.max(problem.qmin() - z, Math.min(problem.qmax() - z, floorW[k] + up));
            codes[k] = (int) q + z;
            wAda[k] = (double) s * q;
            wRtn[k] = (double) s * (AffineQuantizer.quantize(w[k], s, z, problem.qmin(), problem.qmax()) - z);
        }
        double mseRtn = meanSquaredError(loss, wRtn, problem);
        double mseAda = meanSquaredError(loss, wAda, problem);
        return new AdaRoundResult(toWeightLayout(codes, problem), problem.weightShape(), mseRtn, mseAda, history,
                iterations, System.nanoTime() - t0);
    }

    /**
     * The gemm work of {@link #optimize} on a problem of {@code outChannels} × {@code depth} (products per output value)
     * over {@code columns} columns: per iteration a forward and a gradient gemm over a batch of min(batch, columns)
     * columns (2 · 2 · outChannels · depth · batch), and the two full forward passes that score round-to-nearest
     * and the result.
     */
    public static long flops(long outChannels, long depth, long columns, int batchColumns, int iterations) {
        long batch = Math.min(batchColumns, columns);
        return 4L * outChannels * depth * batch * iterations + 2L * 2L * outChannels * depth * columns;
    }

    /** Mean over all columns and output channels of (act(Ŵ X + b) − Y)², in batches of the loss's width. */
    public static double meanSquaredError(AdaRoundLoss loss, double[] weights, AdaRoundProblem problem) {
        int batch = loss.batchColumns();
        int[] cols = new int[batch];
        double sum = 0;
        for (int start = 0; start < problem.columns(); start += batch) {
            int count = Math.min(batch, problem.columns() - start);
            for (int j = 0; j < count; j++) cols[j] = start + j;
            loss.selectColumns(cols, count);
            sum += loss.squaredError(weights);
        }
        return sum / ((double) problem.columns() * problem.outChannels());
    }

    /** Row-major [outChannels, depth] codes in the ONNX weight's layout ({@link AdaRoundProblem#layout}). */
    public static int[] toWeightLayout(int[] codes, AdaRoundProblem problem) {
        return problem.layout().toOnnx(codes, problem.outChannels(), problem.depth(), problem.weightShape());
    }
}
