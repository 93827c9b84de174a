package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.ColumnBatches;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * LSQ for one layer (Esser et al. 2020) in post-training form: Adam on the layer's reconstruction loss
 * ({@link LsqLoss}) over the weight steps, the input step and, with {@link LearnConfig#updateWeights}, W itself,
 * starting from the calibrated steps. One call per layer: {@link #optimize} is what a Spark task runs.
 *
 * <p>Deviations from the paper, which trains the whole network on the task loss with SGD: the loss is the layer's
 * output reconstruction (no labels in PTQ, as AdaRound); the optimizer is Adam on θ = s/s₀ (and W/s₀) with the paper's cosine learning-rate decay, so that one
 * learning rate fits steps of any magnitude — with Adam the gradient scale g only matters through ε, it is kept
 * because the paper defines the gradient with it; the zero point of an affine input grid stays the calibrated one.
 * If the learned steps do not lower the MSE on all columns, the calibrated ones are kept ({@link LearnResult#keptInitial}).
 */
public final class LsqOptimizer {

    /** θ never goes below this: a step stays positive. */
    static final double MIN_RATIO = 1e-3;

    private LsqOptimizer() {}

    /**
     * @param input the input activation's parameters (per tensor), null to leave the input in floating point
     */
    public static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config) {
        return optimize(problem, input, config, 1);
    }

    /**
     * The same on {@code threads} threads (the reconstruction's gemm units and element-wise loops, a lone task's idle
     * cores): the same result whatever the count.
     */
    public static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config, int threads) {
        try (ChunkedLoops loops = threads > 1 ? new ChunkedLoops(threads) : ChunkedLoops.SEQUENTIAL) {
            return optimize(problem, input, config, loops);
        }
    }

    private static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config, ChunkedLoops loops) {
        long t0 = System.nanoTime();
        LsqLoss loss = new LsqLoss(problem, input, config.batchColumns(), DataType.FLOAT, loops);
        int depth = problem.depth(), n = problem.outChannels() * depth, steps = loss.steps();
        double[] s0 = problem.scale().clone();
        double sa0 = input == null ? Double.NaN : input.scale(0);
        float[] wf = problem.weight();
        double[] w0 = new double[n];
        for (int k = 0; k < n; k++) w0[k] = wf[k];

        double[] theta = new double[steps + 1];            // θ_w per step, then θ_a
        java.util.Arrays.fill(theta, 1.0);
        double[] u = new double[n];                         // W / s₀ of its channel
        for (int k = 0; k < n; k++) u[k] = w0[k] / s0[steps == 1 ? 0 : k / depth];
        Adam stepAdam = new Adam(steps + 1, config.learningRate());
        Adam weightAdam = config.updateWeights() ? new Adam(n, config.weightLearningRate()) : null;

        int batch = loss.batchColumns(), columns = problem.columns();
        ColumnBatches batches = new ColumnBatches(columns, batch, config.seed());
        LsqLoss.Gradient grad = new LsqLoss.Gradient(steps, n);
        double[] gTheta = new double[steps + 1], gU = new double[n];
        double[] sw = new double[steps], w = w0.clone();
        int iterations = config.iterations();
        double[] history = new double[(iterations + LearnConfig.HISTORY_EVERY - 1) / LearnConfig.HISTORY_EVERY];

        for (int t = 0; t < iterations; t++) {
            loss.selectColumns(batches.next(), batch);
            for (int c = 0; c < steps; c++) sw[c] = s0[c] * theta[c];
            if (weightAdam != null) for (int k = 0; k < n; k++) w[k] = u[k] * s0[steps == 1 ? 0 : k / depth];
            double sa = sa0 * theta[steps];
            double l = loss.evaluate(w, sw, sa, grad);
            if (t % LearnConfig.HISTORY_EVERY == 0) history[t / LearnConfig.HISTORY_EVERY] = l;
            // chain rule to θ = s/s₀ and u = W/s₀
            for (int c = 0; c < steps; c++) gTheta[c] = grad.weightSteps[c] * s0[c];
            gTheta[steps] = input == null ? 0 : grad.inputStep * sa0;
            double decay = Adam.cosineDecay(t, iterations);
            stepAdam.step(theta, gTheta, decay);
            for (int c = 0; c <= steps; c++) theta[c] = Math.max(MIN_RATIO, theta[c]);
            if (weightAdam != null) {
                for (int k = 0; k < n; k++) gU[k] = grad.weights[k] * s0[steps == 1 ? 0 : k / depth];
                weightAdam.step(u, gU, decay);
            }
        }

        // the deployable result: float32 steps, W as float32, and the codes QuantizeLinear computes from them
        double[] swFinal = new double[steps];
        for (int c = 0; c < steps; c++) swFinal[c] = (float) (s0[c] * theta[c]);
        double saFinal = input == null ? Double.NaN : (float) (sa0 * theta[steps]);
        double[] wFinal = new double[n];
        for (int k = 0; k < n; k++) wFinal[k] = weightAdam == null ? w0[k] : (float) (u[k] * s0[steps == 1 ? 0 : k / depth]);
        double mseBase = loss.meanSquaredError(w0, s0, sa0);
        double mseLearned = loss.meanSquaredError(wFinal, swFinal, saFinal);
        boolean kept = !(mseLearned < mseBase);
        if (kept) {
            swFinal = s0;
            saFinal = sa0;
            wFinal = w0;
            mseLearned = mseBase;
        }
        int[] codes = new int[n];
        for (int k = 0; k < n; k++) {
            int c = k / depth;
            codes[k] = AffineQuantizer.quantize((float) wFinal[k], (float) swFinal[steps == 1 ? 0 : c], problem.zeroPoint(c),
                    problem.qmin(), problem.qmax());
        }
        return new LearnResult(AdaRoundOptimizer.toWeightLayout(codes, problem), problem.weightShape(), swFinal, saFinal,
                mseBase, mseLearned, kept, history, iterations, System.nanoTime() - t0, null);
    }
}
