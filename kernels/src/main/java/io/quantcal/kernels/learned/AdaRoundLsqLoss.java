package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.adaround.RectifiedSigmoid;
import io.quantcal.kernels.adaround.RoundingRegularizer;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One layer's reconstruction loss with AdaRound's rounding and LSQ's steps in the same problem: AdaRound learns
 * whether each weight rounds up or down, LSQ the weight steps and the input step.
 * <pre>
 *   L = (1/B) Σ_columns Σ_channels (act(W̃ X̂_B + b) − Y)²  +  λ f_reg(V)
 *   W̃[c,d] = s_w[c] · q[c,d],   q = clip(⌊W/s₀⌋ + h(V), qmin − Z, qmax − Z)     (AdaRound eq. 22/23, codes on s₀'s grid)
 *   X̂ = Q_LSQ(X; s_a)                                                            (LSQ, straight-through in s_a)
 *   dL/dV = dL/dW̃ ⊙ s_w h'(V) ⊙ [inside the clip] + λ df_reg/dV
 *   dL/ds_w[c] = g_w Σ_d dL/dW̃[c,d] · q[c,d],     dL/ds_a = g_a Σ dL/dX̂ ⊙ ∂x̂/∂s_a
 * </pre>
 * The integer codes are AdaRound's, relative to the calibrated grid (⌊W/s₀⌋ + h(V)); the weight step scales them as a
 * per-channel gain. Its gradient is exact (q does not depend on s_w), where plain LSQ's passes round(W/s) straight
 * through: with explicit codes there is no rounding of W/s left to pass through. The deployed weight is s_w·q with q
 * hardened to ⌊W/s₀⌋ + [h(V) ≥ ½], so the QDQ model computes exactly what this loss computes at the end.
 *
 * <p>The gemms, buffers and FP target are {@link QuantizedReconstruction}'s (the target as AdaRound's); the input
 * quantizer is {@link LsqInput}, as in {@link LsqLoss}. Not thread-safe: one instance per task.
 */
public final class AdaRoundLsqLoss {

    /** Where evaluate writes the gradients. */
    public static final class Gradient {
        public final double[] v;
        public final double[] weightSteps;
        public double inputStep;

        public Gradient(int steps, int weights) {
            this.v = new double[weights];
            this.weightSteps = new double[steps];
        }
    }

    private final QuantizedReconstruction r;
    private final LsqInput in;
    private final int depth, cout, steps;
    private final int[] lo, hi;
    private final double[] floorW, gW, wHat, code, dwdv;
    /** The regularizer's derivative per weight in an iteration that has one (λ ≠ 0); made at its first use. */
    private double[] regScratch;

    public AdaRoundLsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType) {
        this(problem, input, batchColumns, dataType, ChunkedLoops.SEQUENTIAL);
    }

    /** The reconstruction's gemm units and loops on {@code loops}' threads (the caller closes it). */
    public AdaRoundLsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, ChunkedLoops loops) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, loops));
    }

    /** With the products through ND4J ({@code direct} false) or as Java loops (true), whatever the group size. */
    AdaRoundLsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, boolean direct) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, direct, ChunkedLoops.SEQUENTIAL));
    }

    private AdaRoundLsqLoss(AdaRoundProblem problem, QuantParams input, QuantizedReconstruction reconstruction) {
        this.r = reconstruction;
        this.in = new LsqInput(problem.layer(), input, r.stride, r.raw.length);
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.steps = problem.scale().length;
        int n = cout * depth;
        lo = new int[cout];
        hi = new int[cout];
        floorW = new double[n];
        float[] w = problem.weight();
        for (int c = 0; c < cout; c++) {
            lo[c] = problem.qmin() - problem.zeroPoint(c);
            hi[c] = problem.qmax() - problem.zeroPoint(c);
            float s = (float) problem.scale(c);
            // float division, as AdaRoundLoss and QuantizeLinear: ⌊W/s₀⌋ and round-to-nearest share one quotient
            for (int d = 0; d < depth; d++) floorW[c * depth + d] = Math.floor(w[c * depth + d] / s);
        }
        gW = new double[steps];
        for (int c = 0; c < steps; c++) {
            gW[c] = LsqQuantizer.gradientScale(steps == 1 ? (long) n : depth, lo[c], hi[c]);
        }
        wHat = new double[n];
        code = new double[n];
        dwdv = new double[n];
    }

    public int batchColumns() {
        return r.batch;
    }

    public int steps() {
        return steps;
    }

    /** ⌊W/s₀⌋, row-major [outChannels, depth], a copy. */
    public double[] floorWeights() {
        return floorW.clone();
    }

    /** Selects the columns the next evaluations use: {@code count} &lt;= batchColumns indices into X's columns. */
    public void selectColumns(int[] columns, int count) {
        r.selectColumns(columns, count);
        in.unfreeze();
    }

    /** Freezes the input's rounding at step {@code sa} for the selected columns (gradient checks; see {@link LsqInput}). */
    void freezeInput(double sa) {
        in.freeze(r.raw, sa);
    }

    /**
     * L on the selected columns at V, weight steps {@code sw} (one, or one per output channel) and input step
     * {@code sa}; the regularizer only when λ ≠ 0. Fills {@code grad} (nullable).
     */
    public double evaluate(double[] v, double[] sw, double sa, double lambda, double beta, Gradient grad) {
        int n = cout * depth;
        if (v.length != n) throw new IllegalArgumentException("V needs " + n + " values, got " + v.length);
        if (sw.length != steps) throw new IllegalArgumentException("weight steps: expected " + steps + ", got " + sw.length);
        // σ(V) once per weight; h, h' and the regularizer's term and derivative from it (as AdaRoundLoss does)
        boolean regularize = lambda != 0;
        if (regularize && regScratch == null) regScratch = new double[n];
        double reg = 0;
        for (int k = 0; k < n; k++) {
            int c = k / depth;
            double s = sw[steps == 1 ? 0 : c];
            double sg = RectifiedSigmoid.sigmoid(v[k]);
            double h = RectifiedSigmoid.hOfSigmoid(sg), dh = RectifiedSigmoid.derivativeOfSigmoid(sg);
            double q = floorW[k] + h;
            if (q < lo[c]) {
                code[k] = lo[c];
                dwdv[k] = 0;
            } else if (q > hi[c]) {
                code[k] = hi[c];
                dwdv[k] = 0;
            } else {
                code[k] = q;
                dwdv[k] = s * dh;
            }
            wHat[k] = s * code[k];
            if (regularize) reg += RoundingRegularizer.termAndDerivative(h, dh, beta, regScratch, k);
        }
        double loss = reconstruct(sa, grad != null);
        if (regularize) loss += lambda * reg;
        if (grad != null) {
            java.util.Arrays.fill(grad.weightSteps, 0);
            double[] gw = r.gradW;
            for (int k = 0; k < n; k++) {
                int c = k / depth;
                grad.weightSteps[steps == 1 ? 0 : c] += gw[k] * code[k];
                double g = gw[k] * dwdv[k];
                if (regularize) g += lambda * regScratch[k];
                grad.v[k] = g;
            }
            for (int c = 0; c < steps; c++) grad.weightSteps[c] *= gW[c];
            grad.inputStep = in.stepGradient(r.gradX, r.loops);
        }
        return loss;
    }

    private double reconstruct(double sa, boolean gradient) {
        in.apply(r.raw, sa, r.loops);
        return r.loss(wHat, in.xHat, gradient, gradient && in.quantize);
    }

    /**
     * Mean over all columns and output channels of (act(Ŵ X̂ + b) − Y)² for integer codes {@code codes} relative to the
     * zero point (row-major [outChannels, depth]), Ŵ = s_w·codes: the deployed layer's error.
     */
    public double meanSquaredError(int[] codes, double[] sw, double sa) {
        int n = cout * depth;
        for (int k = 0; k < n; k++) wHat[k] = sw[steps == 1 ? 0 : k / depth] * codes[k];
        return r.meanSquaredError(this::selectColumns, () -> reconstruct(sa, false));
    }
}
