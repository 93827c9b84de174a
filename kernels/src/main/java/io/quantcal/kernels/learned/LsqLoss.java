package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One layer's reconstruction loss with LSQ quantizers on its weight and its input, and the loss's straight-through
 * gradients with respect to the weight steps s_w, the input step s_a and W:
 * <pre>
 *   L = (1/B) Σ_columns Σ_channels (act(Ŵ X̂_B + b) − Y)²,   Ŵ = Q_LSQ(W; s_w),  X̂ = Q_LSQ(X; s_a)
 *   dL/dŶ = (2/B)(Ŷ − Y) ⊙ [inside the output clip],  dL/dŴ = dL/dŶ X̂ᵀ,  dL/dX̂ = Ŵᵀ dL/dŶ
 *   dL/ds_w[c] = g_w Σ_d dL/dŴ[c,d] ∂ŵ/∂s,   dL/ds_a = g_a Σ dL/dX̂ ∂x̂/∂s,   dL/dW = dL/dŴ ⊙ [W/s inside the grid]
 * </pre>
 * (∂ŵ/∂s and g of {@link LsqQuantizer}). It is the problem AdaRound solves ({@link AdaRoundProblem}: the same
 * captured X, target and output clip), with the steps learned instead of the rounding. g_w = 1/√(N·Q_P) with N the
 * weights per step (per channel: the channel's depth), g_a with N the input values of one column (a column is this
 * problem's sample).
 *
 * <p>For gradient checks the rounding can be {@link #freeze frozen}: the straight-through estimator is the exact
 * derivative of the surrogate x̂ = x + s·(round(x/s₀) − x/s₀) inside the grid (s·bound outside), with the rounding
 * residual and the region taken at s₀; finite differences of that surrogate check every term above.
 *
 * <p>The gemms and buffers are {@link QuantizedReconstruction}'s. Not thread-safe: one instance per task.
 */
public final class LsqLoss {

    /** Where evaluate writes the gradients. */
    public static final class Gradient {
        public final double[] weightSteps;
        public final double[] weights;
        public double inputStep;

        public Gradient(int steps, int weights) {
            this.weightSteps = new double[steps];
            this.weights = new double[weights];
        }
    }

    private final QuantizedReconstruction r;
    private final int depth, cout, steps;
    private final int[] wlo, whi;
    private final LsqInput in;
    private final double[] gW;
    private final double[] wHat, dwds;
    private final boolean[] wInside;
    private double[] frozenW;
    private byte[] regionW;

    /**
     * @param input the input activation's parameters (per tensor; its zero point is kept while s_a is learned); null:
     *              the input stays in floating point
     */
    public LsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType) {
        this(problem, input, batchColumns, dataType, ChunkedLoops.SEQUENTIAL);
    }

    /** The reconstruction's gemm units and loops on {@code loops}' threads (the caller closes it). */
    public LsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, ChunkedLoops loops) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, loops));
    }

    /** With the products through ND4J ({@code direct} false) or as Java loops (true), whatever the group size. */
    LsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, boolean direct) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, direct, ChunkedLoops.SEQUENTIAL));
    }

    private LsqLoss(AdaRoundProblem problem, QuantParams input, QuantizedReconstruction reconstruction) {
        this.r = reconstruction;
        this.in = new LsqInput(problem.layer(), input, r.stride, r.raw.length);
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.steps = problem.scale().length;
        wlo = new int[cout];
        whi = new int[cout];
        for (int c = 0; c < cout; c++) {
            wlo[c] = problem.qmin() - problem.zeroPoint(c);
            whi[c] = problem.qmax() - problem.zeroPoint(c);
        }
        gW = new double[steps];
        for (int c = 0; c < steps; c++) {
            gW[c] = LsqQuantizer.gradientScale(steps == 1 ? (long) cout * depth : depth, wlo[c], whi[c]);
        }
        int n = cout * depth;
        wHat = new double[n];
        dwds = new double[n];
        wInside = new boolean[n];
    }

    public int batchColumns() {
        return r.batch;
    }

    public int steps() {
        return steps;
    }

    /** Selects the columns the next evaluations use: {@code count} &lt;= batchColumns indices into X's columns. */
    public void selectColumns(int[] columns, int count) {
        r.selectColumns(columns, count);
        in.unfreeze();
    }

    /**
     * Freezes the rounding residuals and grid regions of W and of the selected columns at these steps: until the next
     * {@link #selectColumns}, evaluate computes the surrogate whose exact derivative is the straight-through gradient.
     */
    void freeze(double[] w, double[] sw, double sa) {
        int n = cout * depth;
        frozenW = new double[n];
        regionW = new byte[n];
        for (int k = 0; k < n; k++) {
            int c = k / depth;
            double s = sw[steps == 1 ? 0 : c];
            double v = LsqQuantizer.ratio(w[k], s);
            regionW[k] = (byte) (v <= wlo[c] ? -1 : v >= whi[c] ? 1 : 0);
            frozenW[k] = Math.rint(v) - v;
        }
        in.freeze(r.raw, sa);
    }

    /**
     * L on the selected columns for weights {@code w} (row-major [outChannels, depth]), weight steps {@code sw} (one,
     * or one per output channel) and input step {@code sa} (ignored when the input is not quantized); fills
     * {@code grad} (nullable).
     */
    public double evaluate(double[] w, double[] sw, double sa, Gradient grad) {
        int n = cout * depth;
        if (w.length != n) throw new IllegalArgumentException("W needs " + n + " values, got " + w.length);
        if (sw.length != steps) throw new IllegalArgumentException("weight steps: expected " + steps + ", got " + sw.length);
        double[] fw = frozenW;
        byte[] rw = regionW;
        r.loops.forEach(n, LsqInput.CHUNK, (from, to) -> {
            for (int k = from; k < to; k++) {
                int c = k / depth;
                double s = sw[steps == 1 ? 0 : c];
                int lo = wlo[c], hi = whi[c];
                if (fw != null) {
                    int reg = rw[k];
                    wHat[k] = reg == 0 ? w[k] + s * fw[k] : s * (reg < 0 ? lo : hi);
                    dwds[k] = reg == 0 ? fw[k] : reg < 0 ? lo : hi;
                    wInside[k] = reg == 0;
                } else {
                    double v = LsqQuantizer.ratio(w[k], s);
                    wHat[k] = LsqQuantizer.code(v, lo, hi) * s;
                    dwds[k] = v <= lo ? lo : v >= hi ? hi : Math.rint(v) - v;   // LSQ eq. 3
                    wInside[k] = v > lo && v < hi;
                }
            }
            return 0;
        });
        in.apply(r.raw, sa, r.loops);
        double loss = r.loss(wHat, in.xHat, grad != null, grad != null && in.quantize);
        if (grad != null) {
            double[] gw = r.gradW;
            r.loops.forEach(n, LsqInput.CHUNK, (from, to) -> {
                for (int k = from; k < to; k++) grad.weights[k] = wInside[k] ? gw[k] : 0;
                return 0;
            });
            if (steps == 1) {
                // one step: the chunks' partial sums in chunk order
                grad.weightSteps[0] = gW[0] * r.loops.sum(n, LsqInput.CHUNK, (from, to) -> {
                    double part = 0;
                    for (int k = from; k < to; k++) part += gw[k] * dwds[k];
                    return part;
                });
            } else {
                // per channel: each channel's sum over its depth, in order
                r.loops.forEach(cout, Math.max(1, LsqInput.CHUNK / depth), (c0, c1) -> {
                    for (int c = c0; c < c1; c++) {
                        double acc = 0;
                        for (int k = c * depth; k < (c + 1) * depth; k++) acc += gw[k] * dwds[k];
                        grad.weightSteps[c] = acc * gW[c];
                    }
                    return 0;
                });
            }
            grad.inputStep = in.stepGradient(r.gradX, r.loops);
        }
        return loss;
    }

    /** Mean over all columns and output channels of (act(Ŵ X̂ + b) − Y)², in batches of this loss's width. */
    public double meanSquaredError(double[] w, double[] sw, double sa) {
        return r.meanSquaredError(this::selectColumns, () -> evaluate(w, sw, sa, null));
    }
}
