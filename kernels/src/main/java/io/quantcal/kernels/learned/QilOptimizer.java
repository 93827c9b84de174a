package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.ColumnBatches;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * QIL for one layer (Jung et al. 2019) in post-training form: Adam on the layer's reconstruction loss
 * ({@link QilLoss}) over the weight intervals (c_W, d_W, γ_W per weight step), the input interval (c_X, d_X, γ = 1, when
 * the input is a non-negative activation) and, with {@link LearnConfig#updateWeights}, W ("jointly"; without, the
 * paper's "quantizer only"). Starts from the calibrated grids: c = d = s·q_D/2 (no pruning, clipping at the calibrated
 * range), γ = 1, where QIL's quantizer is the calibrated uniform one.
 *
 * <p>Deviations from the paper (task loss, SGD, whole network): the layer's reconstruction loss; Adam on c/c₀, d/d₀
 * and γ with cosine decay (as {@link LsqOptimizer}), learning c + d and c − d rather than c and d (see
 * {@link #constrain}); the pruning threshold kept ≥ 0 (c ≥ d), γ in [1/4, 4]; the
 * discretized value's real scale is the clipping threshold ({@link QilQuantizer}). Deployed, the weights are QIL's own
 * codes (exact for any γ); the input goes through the uniform grid [0, c_X + d_X] of q_D steps, which is QIL's T_X only
 * when c_X = d_X: above a learned pruning threshold c_X − d_X &gt; 0 the deployed model neither prunes nor spaces its
 * levels by 2d_X/q_D. The table's MSE is the deployed one; QIL's own is {@link LearnResult.QilIntervals#mseQil}.
 */
public final class QilOptimizer {

    static final double MIN_RATIO = 1e-3, MIN_GAMMA = 0.25, MAX_GAMMA = 4;

    private QilOptimizer() {}

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
        QilLoss loss = new QilLoss(problem, input, config.batchColumns(), DataType.FLOAT, loops);
        int depth = problem.depth(), n = problem.outChannels() * depth, steps = loss.steps(), levels = problem.qmax();
        double[] s0 = problem.scale().clone();
        double[] r0 = new double[steps];                   // the calibrated clipping threshold s·q_D
        for (int s = 0; s < steps; s++) r0[s] = s0[s] * levels;
        boolean learnInput = loss.learnsInput();
        double sa0 = input == null ? Double.NaN : input.scale(0);
        double rx0 = learnInput ? sa0 * input.qmax() : Double.NaN;
        float[] wf = problem.weight();
        double[] w0 = new double[n];
        for (int k = 0; k < n; k++) w0[k] = wf[k];

        // θ: (c + d)/r₀ and (c − d)/r₀ per step, then γ per step, then the same two for the input
        double[] theta = new double[3 * steps + 2];
        java.util.Arrays.fill(theta, 1.0);
        for (int s = 0; s < steps; s++) theta[steps + s] = 0;   // c = d: no pruning, the calibrated uniform grid
        theta[3 * steps + 1] = 0;
        double[] u = new double[n];
        for (int k = 0; k < n; k++) u[k] = w0[k] / s0[steps == 1 ? 0 : k / depth];
        Adam adam = new Adam(theta.length, config.learningRate());
        Adam weightAdam = config.updateWeights() ? new Adam(n, config.weightLearningRate()) : null;

        int batch = loss.batchColumns(), columns = problem.columns();
        ColumnBatches batches = new ColumnBatches(columns, batch, config.seed());
        QilLoss.Gradient grad = new QilLoss.Gradient(steps, n);
        double[] gTheta = new double[theta.length], gU = new double[n];
        double[] c = new double[steps], d = new double[steps], gamma = new double[steps], w = w0.clone();
        int iterations = config.iterations();
        double[] history = new double[(iterations + LearnConfig.HISTORY_EVERY - 1) / LearnConfig.HISTORY_EVERY];
        for (int t = 0; t < iterations; t++) {
            loss.selectColumns(batches.next(), batch);
            unpack(theta, r0, c, d, gamma);
            if (weightAdam != null) for (int k = 0; k < n; k++) w[k] = u[k] * s0[steps == 1 ? 0 : k / depth];
            double cx = rx0 * (theta[3 * steps] + theta[3 * steps + 1]) / 2, dx = rx0 * (theta[3 * steps] - theta[3 * steps + 1]) / 2;
            double l = loss.evaluate(w, c, d, gamma, cx, dx, grad);
            if (t % LearnConfig.HISTORY_EVERY == 0) history[t / LearnConfig.HISTORY_EVERY] = l;
            // c = r₀(θ_R + θ_P)/2, d = r₀(θ_R − θ_P)/2
            for (int s = 0; s < steps; s++) {
                gTheta[s] = (grad.c[s] + grad.d[s]) * r0[s] / 2;
                gTheta[steps + s] = (grad.c[s] - grad.d[s]) * r0[s] / 2;
                gTheta[2 * steps + s] = grad.gamma[s];
            }
            gTheta[3 * steps] = learnInput ? (grad.inputC + grad.inputD) * rx0 / 2 : 0;
            gTheta[3 * steps + 1] = learnInput ? (grad.inputC - grad.inputD) * rx0 / 2 : 0;
            double decay = Adam.cosineDecay(t, iterations);
            adam.step(theta, gTheta, decay);
            constrain(theta, steps);
            if (weightAdam != null) {
                for (int k = 0; k < n; k++) gU[k] = grad.weights[k] * s0[steps == 1 ? 0 : k / depth];
                weightAdam.step(u, gU, decay);
            }
        }

        unpack(theta, r0, c, d, gamma);
        for (int s = 0; s < steps; s++) {
            c[s] = (float) c[s];
            d[s] = (float) d[s];
            gamma[s] = (float) gamma[s];
        }
        double cx = learnInput ? (float) (rx0 * (theta[3 * steps] + theta[3 * steps + 1]) / 2) : Double.NaN;
        double dx = learnInput ? (float) (rx0 * (theta[3 * steps] - theta[3 * steps + 1]) / 2) : Double.NaN;
        double[] wFinal = new double[n];
        for (int k = 0; k < n; k++) wFinal[k] = weightAdam == null ? w0[k] : (float) (u[k] * s0[steps == 1 ? 0 : k / depth]);
        // the deployable layer: QIL's codes with scale (c+d)/q_D; the input on the uniform grid [0, c_X + d_X]
        int[] codes = new int[n];
        double[] sw = new double[steps];
        for (int s = 0; s < steps; s++) sw[s] = (float) ((c[s] + d[s]) / levels);
        double[] deq = new double[n];
        long pruned = 0, clipped = 0;
        for (int k = 0; k < n; k++) {
            int s = steps == 1 ? 0 : k / depth;
            double a = Math.abs(wFinal[k]);
            int reg = QilQuantizer.region(a, c[s], d[s]);
            if (reg < 0) pruned++;
            if (reg > 0) clipped++;
            codes[k] = (int) Math.signum(wFinal[k]) * QilQuantizer.code(a, c[s], d[s], gamma[s], levels);
            deq[k] = (float) (codes[k] * (float) sw[s]);
        }
        double sx = learnInput ? (float) ((cx + dx) / input.qmax()) : sa0;
        LsqLoss deployed = new LsqLoss(problem, input, config.batchColumns(), DataType.FLOAT);
        double mseBase = deployed.meanSquaredError(w0, s0, sa0);
        double mseDeployed = deployed.meanSquaredError(deq, sw, sx);
        double mseQil = loss.meanSquaredError(wFinal, c, d, gamma, cx, dx);
        long xPruned = 0, xClipped = 0;
        if (learnInput) {
            for (float x : problem.inputs()) {
                if (x < cx - dx) xPruned++;
                else if (x > cx + dx) xClipped++;
            }
        }
        double xs = problem.inputs().length;
        LearnResult.QilIntervals intervals = new LearnResult.QilIntervals(c, d, gamma, cx, dx, pruned / (double) n,
                clipped / (double) n, learnInput ? xPruned / xs : Double.NaN, learnInput ? xClipped / xs : Double.NaN, mseQil);
        boolean kept = !(mseDeployed < mseBase);
        if (kept) {
            sw = s0;
            sx = sa0;
            mseDeployed = mseBase;
            for (int k = 0; k < n; k++) {
                int ch = k / depth;
                codes[k] = AffineQuantizer.quantize((float) w0[k], (float) s0[steps == 1 ? 0 : ch], 0, problem.qmin(), problem.qmax());
            }
        }
        return new LearnResult(AdaRoundOptimizer.toWeightLayout(codes, problem), problem.weightShape(), sw, sx, mseBase,
                mseDeployed, kept, history, iterations, System.nanoTime() - t0, intervals);
    }

    private static void unpack(double[] theta, double[] r0, double[] c, double[] d, double[] gamma) {
        int steps = c.length;
        for (int s = 0; s < steps; s++) {
            c[s] = r0[s] * (theta[s] + theta[steps + s]) / 2;
            d[s] = r0[s] * (theta[s] - theta[steps + s]) / 2;
            gamma[s] = theta[2 * steps + s];
        }
    }

    /**
     * The clipping threshold c + d &gt; 0, the pruning threshold 0 ≤ c − d &lt; c + d (so d &gt; 0), γ in [1/4, 4]. Learning
     * c + d and c − d instead of c and d (a deviation from the paper's parameters): Adam normalizes each parameter's
     * step, and on c and d separately a push of the pruning threshold below 0 (projected back) cancelled the
     * clipping threshold's own steps.
     */
    private static void constrain(double[] theta, int steps) {
        for (int s = 0; s < steps; s++) {
            project(theta, s, steps + s);
            theta[2 * steps + s] = Math.min(MAX_GAMMA, Math.max(MIN_GAMMA, theta[2 * steps + s]));
        }
        project(theta, 3 * steps, 3 * steps + 1);
    }

    private static void project(double[] theta, int range, int prune) {
        theta[range] = Math.max(MIN_RATIO, theta[range]);
        theta[prune] = Math.min((1 - MIN_RATIO) * theta[range], Math.max(0, theta[prune]));
    }
}
