package io.quantcal.kernels.learned;

import io.quantcal.kernels.adaround.AdaRoundLoss;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

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
 * <p>Buffers as in {@link AdaRoundLoss}: per group Ŵ [K/G, D] 'c', X̂_B [D, B] 'f', Ŷ and dL/dŶ [K/G, B] 'f',
 * dL/dŴ [K/G, D] 'c', dL/dX̂ [D, B] 'f'. Not thread-safe: one instance per task.
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

    private final AdaRoundProblem p;
    private final DataType dataType;
    private final int batch, groups, kg, depth, cout, stride, steps;
    private final float[] targetT;
    private final int[] wlo, whi;
    private final boolean quantizeInput;
    private final int alo, ahi;
    private final double[] gW;
    private final double gA;
    private final INDArray[] wq, xq, yb, gy, gw, gx;
    private final double[] wHat, dwds;
    private final boolean[] wInside;
    private final double[] xRaw, xHat, dxds;
    private final double[] yScratch, gwScratch, gxScratch;
    private final float[] floatScratch;
    private final int[] selected;
    private int selectedCount;
    private double[] frozenW, frozenX;
    private byte[] regionW, regionX;

    /**
     * @param input the input activation's parameters (per tensor; its zero point is kept while s_a is learned); null:
     *              the input stays in floating point
     */
    public LsqLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType) {
        if (batchColumns < 1) throw new IllegalArgumentException("batch of columns must be >= 1, got " + batchColumns);
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("LSQ gemms run in FLOAT or DOUBLE, got " + dataType);
        }
        if (input != null && input.perChannel()) {
            throw new IllegalArgumentException("layer " + problem.layer() + ": LSQ learns one input step; the input's parameters are per channel");
        }
        this.p = problem;
        this.dataType = dataType;
        this.batch = Math.min(batchColumns, problem.columns());
        this.groups = problem.groups();
        this.kg = problem.groupChannels();
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.stride = groups * depth;
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
        quantizeInput = input != null;
        alo = input == null ? 0 : input.qmin() - input.zeroPoint(0);
        ahi = input == null ? 0 : input.qmax() - input.zeroPoint(0);
        gA = input == null ? 0 : LsqQuantizer.gradientScale(stride, alo, ahi);
        wq = new INDArray[groups];
        xq = new INDArray[groups];
        yb = new INDArray[groups];
        gy = new INDArray[groups];
        gw = new INDArray[groups];
        gx = new INDArray[groups];
        for (int g = 0; g < groups; g++) {
            wq[g] = Nd4j.create(dataType, new long[] {kg, depth}, 'c');
            xq[g] = Nd4j.create(dataType, new long[] {depth, batch}, 'f');
            yb[g] = Nd4j.create(dataType, new long[] {kg, batch}, 'f');
            gy[g] = Nd4j.create(dataType, new long[] {kg, batch}, 'f');
            gw[g] = Nd4j.create(dataType, new long[] {kg, depth}, 'c');
            gx[g] = Nd4j.create(dataType, new long[] {depth, batch}, 'f');
        }
        int n = cout * depth;
        wHat = new double[n];
        dwds = new double[n];
        wInside = new boolean[n];
        xRaw = new double[groups * batch * depth];
        xHat = new double[xRaw.length];
        dxds = new double[xRaw.length];
        yScratch = new double[kg * batch];
        gwScratch = new double[n];
        gxScratch = new double[depth * batch];
        floatScratch = new float[Math.max(kg * batch, Math.max(kg * depth, depth * batch))];
        selected = new int[batch];
        targetT = problem.target() != null ? problem.target() : AdaRoundLoss.floatingPointTarget(problem, batchColumns);
    }

    public int batchColumns() {
        return batch;
    }

    public int steps() {
        return steps;
    }

    /** Selects the columns the next evaluations use: {@code count} &lt;= batchColumns indices into X's columns. */
    public void selectColumns(int[] columns, int count) {
        if (count < 1 || count > batch) throw new IllegalArgumentException("column count " + count + " outside [1, " + batch + "]");
        float[] x = p.inputs();
        for (int g = 0; g < groups; g++) {
            int base = g * batch * depth;
            for (int j = 0; j < count; j++) {
                int src = columns[j] * stride + g * depth;
                for (int d = 0; d < depth; d++) xRaw[base + j * depth + d] = x[src + d];
            }
            for (int j = count * depth; j < batch * depth; j++) xRaw[base + j] = 0;
        }
        System.arraycopy(columns, 0, selected, 0, count);
        selectedCount = count;
        frozenX = null;
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
        frozenX = new double[xRaw.length];
        regionX = new byte[xRaw.length];
        for (int i = 0; i < xRaw.length; i++) {
            double v = LsqQuantizer.ratio(xRaw[i], sa);
            regionX[i] = (byte) (v <= alo ? -1 : v >= ahi ? 1 : 0);
            frozenX[i] = Math.rint(v) - v;
        }
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
        for (int k = 0; k < n; k++) {
            int c = k / depth;
            double s = sw[steps == 1 ? 0 : c];
            int lo = wlo[c], hi = whi[c];
            if (frozenW != null) {
                int r = regionW[k];
                wHat[k] = r == 0 ? w[k] + s * frozenW[k] : s * (r < 0 ? lo : hi);
                dwds[k] = r == 0 ? frozenW[k] : r < 0 ? lo : hi;
                wInside[k] = r == 0;
            } else {
                double v = LsqQuantizer.ratio(w[k], s);
                wHat[k] = LsqQuantizer.code(v, lo, hi) * s;
                dwds[k] = v <= lo ? lo : v >= hi ? hi : Math.rint(v) - v;   // LSQ eq. 3
                wInside[k] = v > lo && v < hi;
            }
        }
        for (int i = 0; i < xRaw.length; i++) {
            if (!quantizeInput) {
                xHat[i] = xRaw[i];
                dxds[i] = 0;
            } else if (frozenX != null) {
                int r = regionX[i];
                xHat[i] = r == 0 ? xRaw[i] + sa * frozenX[i] : sa * (r < 0 ? alo : ahi);
                dxds[i] = r == 0 ? frozenX[i] : r < 0 ? alo : ahi;
            } else {
                double v = LsqQuantizer.ratio(xRaw[i], sa);
                xHat[i] = LsqQuantizer.code(v, alo, ahi) * sa;
                dxds[i] = v <= alo ? alo : v >= ahi ? ahi : Math.rint(v) - v;
            }
        }
        double sum = 0;
        double twoOverB = 2.0 / selectedCount;
        float[] bias = p.bias();
        double outMin = p.outputMin(), outMax = p.outputMax();
        double dsa = 0;
        for (int g = 0; g < groups; g++) {
            write(wq[g], wHat, g * kg * depth, kg * depth);
            write(xq[g], xHat, g * batch * depth, batch * depth);
            Nd4j.exec(new Mmul(wq[g], xq[g], yb[g], 1.0, 0.0, MMulTranspose.allFalse()));
            read(yb[g], yScratch, 0, kg * batch);
            for (int j = 0; j < batch; j++) {
                int o = j * kg;
                if (j >= selectedCount) {
                    for (int i = 0; i < kg; i++) yScratch[o + i] = 0;
                    continue;
                }
                int t = selected[j] * cout + g * kg;
                for (int i = 0; i < kg; i++) {
                    double pre = yScratch[o + i] + (bias == null ? 0 : bias[g * kg + i]);
                    double out = pre < outMin ? outMin : pre > outMax ? outMax : pre;
                    double e = out - targetT[t + i];
                    sum += e * e;
                    yScratch[o + i] = pre <= outMin || pre >= outMax ? 0 : twoOverB * e;
                }
            }
            if (grad != null) {
                write(gy[g], yScratch, 0, kg * batch);
                Nd4j.exec(new Mmul(gy[g], xq[g], gw[g], 1.0, 0.0, new MMulTranspose(false, true, false)));
                read(gw[g], gwScratch, g * kg * depth, kg * depth);
                if (quantizeInput) {
                    Nd4j.exec(new Mmul(wq[g], gy[g], gx[g], 1.0, 0.0, new MMulTranspose(true, false, false)));
                    read(gx[g], gxScratch, 0, depth * batch);
                    int base = g * batch * depth;
                    for (int i = 0; i < selectedCount * depth; i++) dsa += gxScratch[i] * dxds[base + i];
                }
            }
        }
        if (grad != null) {
            java.util.Arrays.fill(grad.weightSteps, 0);
            for (int k = 0; k < n; k++) {
                int c = k / depth;
                grad.weightSteps[steps == 1 ? 0 : c] += gwScratch[k] * dwds[k];
                grad.weights[k] = wInside[k] ? gwScratch[k] : 0;
            }
            for (int c = 0; c < steps; c++) grad.weightSteps[c] *= gW[c];
            grad.inputStep = gA * dsa;
        }
        return sum / selectedCount;
    }

    /** Mean over all columns and output channels of (act(Ŵ X̂ + b) − Y)², in batches of this loss's width. */
    public double meanSquaredError(double[] w, double[] sw, double sa) {
        int[] cols = new int[batch];
        double sum = 0;
        for (int start = 0; start < p.columns(); start += batch) {
            int count = Math.min(batch, p.columns() - start);
            for (int j = 0; j < count; j++) cols[j] = start + j;
            selectColumns(cols, count);
            sum += evaluate(w, sw, sa, null) * count;
        }
        return sum / ((double) p.columns() * cout);
    }

    private void write(INDArray a, double[] src, int from, int length) {
        if (dataType == DataType.FLOAT) {
            for (int i = 0; i < length; i++) floatScratch[i] = (float) src[from + i];
            a.data().asNioFloat().put(0, floatScratch, 0, length);
        } else {
            a.data().asNioDouble().put(src, from, length).rewind();
        }
    }

    private void read(INDArray a, double[] dst, int from, int length) {
        if (dataType == DataType.FLOAT) {
            a.data().asNioFloat().get(0, floatScratch, 0, length);
            for (int i = 0; i < length; i++) dst[from + i] = floatScratch[i];
        } else {
            a.data().asNioDouble().get(dst, from, length);
        }
    }
}
