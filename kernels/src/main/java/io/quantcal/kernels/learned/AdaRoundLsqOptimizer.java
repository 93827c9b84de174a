package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.adaround.BetaSchedule;
import io.quantcal.kernels.adaround.ColumnBatches;
import io.quantcal.kernels.adaround.RectifiedSigmoid;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * AdaRound and LSQ in one layer problem ({@link AdaRoundLsqLoss}), as the block-reconstruction successors of AdaRound
 * (BRECQ, QDrop) combine them: Adam over V with AdaRound's learning rate, λ switched on after the warm-up and β
 * annealed ({@link BetaSchedule}), and at the same time Adam over the steps θ = s/s₀ (weight steps and input step)
 * with the learn pass's learning rate and LSQ's cosine decay; then h(V) hardened to {0, 1}. If the result does not
 * lower the layer's MSE over all columns against the calibrated parameters rounded to nearest, those are kept
 * ({@link LearnResult#keptInitial}). One call per layer: {@link #optimize} is what a Spark task runs.
 */
public final class AdaRoundLsqOptimizer {

    private AdaRoundLsqOptimizer() {}

    /**
     * @param input    the input activation's parameters (per tensor), null to leave the input in floating point
     * @param config   iterations, the steps' learning rate, column batch and seed ({@code updateWeights} must be false:
     *                 the rounding decides the weights)
     * @param adaround V's learning rate, λ and β schedule (its iteration count is replaced by {@code config}'s)
     */
    public static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config, AdaRoundConfig adaround) {
        return optimize(problem, input, config, adaround, 1);
    }

    /**
     * The same on {@code threads} threads (the reconstruction's gemm units and element-wise loops, a lone task's idle
     * cores): the same result whatever the count.
     */
    public static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config, AdaRoundConfig adaround, int threads) {
        try (ChunkedLoops loops = threads > 1 ? new ChunkedLoops(threads) : ChunkedLoops.SEQUENTIAL) {
            return optimize(problem, input, config, adaround, loops);
        }
    }

    private static LearnResult optimize(AdaRoundProblem problem, QuantParams input, LearnConfig config, AdaRoundConfig adaround, ChunkedLoops loops) {
        if (config.updateWeights()) {
            throw new IllegalArgumentException("layer " + problem.layer() + ": AdaRound chooses the rounding of the original"
                    + " weights; fine-tuning them as well (update-weights) is not combined with it");
        }
        long t0 = System.nanoTime();
        AdaRoundLsqLoss loss = new AdaRoundLsqLoss(problem, input, config.batchColumns(), DataType.FLOAT, loops);
        int depth = problem.depth(), n = problem.outChannels() * depth, steps = loss.steps();
        double[] s0 = problem.scale().clone();
        double sa0 = input == null ? Double.NaN : input.scale(0);
        float[] w = problem.weight();
        double[] floorW = loss.floorWeights();

        // V₀: h(V₀) = W/s₀ − ⌊W/s₀⌋, W̃ starts at W (as AdaRoundOptimizer)
        double[] v = new double[n];
        for (int k = 0; k < n; k++) {
            float s = (float) problem.scale(k / depth);
            v[k] = RectifiedSigmoid.inverse(w[k] / s - floorW[k]);
        }
        double[] theta = new double[steps + 1];            // θ_w per step, then θ_a
        java.util.Arrays.fill(theta, 1.0);
        Adam vAdam = new Adam(n, adaround.learningRate());
        Adam stepAdam = new Adam(steps + 1, config.learningRate());
        int iterations = config.iterations();
        BetaSchedule schedule = adaround.withIterations(iterations).schedule();

        int batch = loss.batchColumns();
        ColumnBatches batches = new ColumnBatches(problem.columns(), batch, config.seed());
        AdaRoundLsqLoss.Gradient grad = new AdaRoundLsqLoss.Gradient(steps, n);
        double[] gTheta = new double[steps + 1], sw = new double[steps];
        double[] history = new double[(iterations + LearnConfig.HISTORY_EVERY - 1) / LearnConfig.HISTORY_EVERY];
        for (int t = 0; t < iterations; t++) {
            loss.selectColumns(batches.next(), batch);
            for (int c = 0; c < steps; c++) sw[c] = s0[c] * theta[c];
            double sa = sa0 * theta[steps];
            double lambda = schedule.regularizerActive(t) ? adaround.lambda() : 0;
            double l = loss.evaluate(v, sw, sa, lambda, schedule.beta(t), grad);
            if (t % LearnConfig.HISTORY_EVERY == 0) history[t / LearnConfig.HISTORY_EVERY] = l;
            vAdam.step(v, grad.v, 1);
            for (int c = 0; c < steps; c++) gTheta[c] = grad.weightSteps[c] * s0[c];
            gTheta[steps] = input == null ? 0 : grad.inputStep * sa0;
            stepAdam.step(theta, gTheta, Adam.cosineDecay(t, iterations));
            for (int c = 0; c <= steps; c++) theta[c] = Math.max(LsqOptimizer.MIN_RATIO, theta[c]);
        }

        // hardened: h ≥ ½ rounds up (AdaRound sec. 4); float32 steps, as the QDQ model stores them
        int[] learned = new int[n], nearest = new int[n];
        double[] swFinal = new double[steps];
        for (int c = 0; c < steps; c++) swFinal[c] = (float) (s0[c] * theta[c]);
        double saFinal = input == null ? Double.NaN : (float) (sa0 * theta[steps]);
        for (int k = 0; k < n; k++) {
            int c = k / depth, z = problem.zeroPoint(c);
            int up = RectifiedSigmoid.h(v[k]) >= 0.5 ? 1 : 0;
            learned[k] = (int) Math.max(problem.qmin() - z, Math.min(problem.qmax() - z, floorW[k] + up));
            nearest[k] = AffineQuantizer.quantize(w[k], (float) problem.scale(c), z, problem.qmin(), problem.qmax()) - z;
        }
        double mseBase = loss.meanSquaredError(nearest, s0, sa0);
        double mseLearned = loss.meanSquaredError(learned, swFinal, saFinal);
        boolean kept = !(mseLearned < mseBase);
        int[] chosen = kept ? nearest : learned;
        if (kept) {
            swFinal = s0;
            saFinal = sa0;
            mseLearned = mseBase;
        }
        int[] codes = new int[n];
        for (int k = 0; k < n; k++) codes[k] = chosen[k] + problem.zeroPoint(k / depth);
        return new LearnResult(AdaRoundOptimizer.toWeightLayout(codes, problem), problem.weightShape(), swFinal, saFinal,
                mseBase, mseLearned, kept, history, iterations, System.nanoTime() - t0, null);
    }
}
