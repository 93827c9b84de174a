package io.quantcal.kernels.adaround;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import io.quantcal.kernels.runtime.ChunkedLoops;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The AdaRound objective of one layer on a batch of columns, and its gradient with respect to V
 * (Nagel et al. 2020, eq. 25):
 * <pre>
 *   L(V) = (1/B) Σ_columns Σ_channels (Ŷ − Y)²  +  λ f_reg(V)
 *   Ŷ = act(W̃ X_B + b),  W̃ = s · clip(⌊W/s⌋ + h(V), qmin − Z, qmax − Z)   (eq. 22/23)
 * </pre>
 * The reconstruction term sums over output channels and averages over the B batch columns, as AIMET's
 * {@code mse_loss(...).sum(1).mean()} does, so that λ = 0.01 weighs it as in the reference code.
 *
 * act clips to [outputMin, outputMax] (ReLU: [0, +∞), ReLU6/Clip: [min, max], none: unbounded).
 *
 * <p>Gradient: dL/dŶ = (2/B)(Ŷ − Y) ⊙ [outputMin &lt; pre-activation &lt; outputMax]; dL/dW̃ = (dL/dŶ) X_Bᵀ (one gemm);
 * dL/dV = dL/dW̃ ⊙ s ⊙ h'(V) ⊙ [inside the grid clip] + λ df_reg/dV.
 *
 * <p>All buffers are allocated once: per group W̃ [K/G, D] 'c', X_B [D, B] 'f', Ŷ and dL/dŶ [K/G, B] 'f',
 * dL/dW̃ [K/G, D] 'c'. The two gemms per group run ND4J's matmul op into them. Element-wise work is in
 * Java, in double; the gemms in {@code dataType} (FLOAT for the optimizer, DOUBLE for gradient checks).
 * The element-wise loops run in fixed chunks on {@link ChunkedLoops}' threads (a lone task may have the executor's
 * cores); sums add the chunks in order, so every value is the same whatever the thread count.
 * Not thread-safe: one instance per task.
 */
public final class AdaRoundLoss {

    /** The value of L at one V: reconstruction and f_reg (f_reg is 0 when not evaluated, λ = 0). */
    public record Value(double reconstruction, double regularizer, double lambda) {
        public double total() {
            return reconstruction + lambda * regularizer;
        }
    }

    private final AdaRoundProblem p;
    private final DataType dataType;
    private final int batch, groups, kg, depth, cout, stride;
    private final float[] targetT;       // Yᵀ [columns, cout]
    private final double[] floorW;       // ⌊W/s⌋, row-major [cout, depth]
    private final double[] channelScale; // s per output channel
    private final double[] lo, hi;       // qmin − Z, qmax − Z per output channel
    /** Per group: X_B [depth, B] 'f'. */
    private final INDArray[] xb;
    /**
     * The gemm units: a group's output channels in blocks of at most {@link #UNIT_ROWS} rows, each with its own W̃
     * [rows, depth] 'c', Ŷ and dL/dŶ [rows, B] 'f', dL/dW̃ [rows, depth] 'c' and scratch, so that units run on
     * different threads (one-thread gemms side by side: ND4J's own threading loses on these sizes).
     */
    private final Unit[] units;
    private final double[] dwdv;         // s ⊙ h'(V) ⊙ [inside clip], reused
    /** The regularizer's derivative per weight in an iteration that has one (λ ≠ 0); made at its first use. */
    private double[] regScratch;
    private final double[] wScratch;
    private final int[] selected;
    private int selectedCount;
    private final ChunkedLoops loops;
    /** W̃ as float32 for the gemms (FLOAT, not direct), filled by the weight loop itself. */
    private final float[] wFloat;

    /** Weights per chunk of the weight-wise loops (fixed: the chunking, not the thread count, orders the sums). */
    static final int WEIGHT_CHUNK = 16384;
    /** Output channels per gemm unit (fixed: the units, not the thread count, order the sums). */
    static final int UNIT_ROWS = 64;

    /** Rows [row0, row0 + rows) of group g's output channels, and their buffers. */
    private static final class Unit {
        final int group, row0, rows;
        final INDArray w, y, gy, gw;
        final double[] yScratch;
        final float[] floatScratch; // bulk transfers to and from float32 buffers

        Unit(int group, int row0, int rows, int depth, int batch, DataType type) {
            this.group = group;
            this.row0 = row0;
            this.rows = rows;
            w = Nd4j.create(type, new long[] {rows, depth}, 'c');
            y = Nd4j.create(type, new long[] {rows, batch}, 'f');
            gy = Nd4j.create(type, new long[] {rows, batch}, 'f');
            gw = Nd4j.create(type, new long[] {rows, depth}, 'c');
            yScratch = new double[rows * batch];
            floatScratch = new float[rows * Math.max(batch, depth)];
        }
    }
    /**
     * Small groups (at most {@link #DIRECT_MAX_WEIGHTS} weights, e.g. depthwise 3×3): the products run as Java loops
     * over {@link #xDirect} (per group [depth, B] column-major, like xb) into {@link #gwDirect}, no ND4J call per group.
     */
    private final boolean direct;
    private final double[] xDirect, gwDirect;

    /** Groups with at most this many weights (output channels per group × depth) skip ND4J (as the learn pass's). */
    public static final int DIRECT_MAX_WEIGHTS = 32;

    /** Buffers for batches of up to {@code batchColumns} columns (clamped to the problem's column count). */
    public AdaRoundLoss(AdaRoundProblem problem, int batchColumns, DataType dataType) {
        this(problem, batchColumns, dataType, ChunkedLoops.SEQUENTIAL);
    }

    /** The element-wise loops on {@code loops}' threads (the caller closes it). */
    public AdaRoundLoss(AdaRoundProblem problem, int batchColumns, DataType dataType, ChunkedLoops loops) {
        this(problem, batchColumns, dataType, problem.groupChannels() * problem.depth() <= DIRECT_MAX_WEIGHTS, loops);
    }

    /** {@code direct}: the products as Java loops in double whatever the group size (tests compare both paths). */
    AdaRoundLoss(AdaRoundProblem problem, int batchColumns, DataType dataType, boolean direct) {
        this(problem, batchColumns, dataType, direct, ChunkedLoops.SEQUENTIAL);
    }

    AdaRoundLoss(AdaRoundProblem problem, int batchColumns, DataType dataType, boolean direct, ChunkedLoops loops) {
        if (batchColumns < 1) throw new IllegalArgumentException("batch of columns must be >= 1, got " + batchColumns);
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("AdaRound gemms run in FLOAT or DOUBLE, got " + dataType);
        }
        this.p = problem;
        this.dataType = dataType;
        this.batch = Math.min(batchColumns, problem.columns());
        this.groups = problem.groups();
        this.kg = problem.groupChannels();
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.stride = groups * depth;
        int n = cout * depth;
        floorW = new double[n];
        channelScale = new double[cout];
        lo = new double[cout];
        hi = new double[cout];
        float[] w = problem.weight();
        for (int c = 0; c < cout; c++) {
            float s = (float) problem.scale(c);
            channelScale[c] = s;
            lo[c] = problem.qmin() - problem.zeroPoint(c);
            hi[c] = problem.qmax() - problem.zeroPoint(c);
            // float division, as AffineQuantizer rounds: ⌊W/s⌋ and round-to-nearest then share one quotient
            for (int d = 0; d < depth; d++) floorW[c * depth + d] = Math.floor(w[c * depth + d] / s);
        }
        this.direct = direct;
        this.loops = loops;
        wFloat = !direct && dataType == DataType.FLOAT ? new float[n] : null;
        xDirect = direct ? new double[groups * batch * depth] : null;
        gwDirect = direct ? new double[n] : null;
        xb = new INDArray[groups];
        java.util.List<Unit> us = new java.util.ArrayList<>();
        for (int g = 0; g < (direct ? 0 : groups); g++) {
            xb[g] = Nd4j.create(dataType, new long[] {depth, batch}, 'f');
            for (int r = 0; r < kg; r += UNIT_ROWS) us.add(new Unit(g, r, Math.min(UNIT_ROWS, kg - r), depth, batch, dataType));
        }
        units = us.toArray(new Unit[0]);
        dwdv = new double[n];
        wScratch = new double[n];
        selected = new int[batch];
        targetT = problem.target() != null ? problem.target() : computeTarget();
    }

    /**
     * Y = act(W X + b) of {@code problem}'s own W and X on every column (Yᵀ [columns, outChannels]), computed as the
     * optimizer computes its default target with the same column batch: bit for bit the target the problem would
     * get without one. The asymmetric form (eq. 26) takes this from the FP input and pairs it with the quantized input.
     */
    public static float[] floatingPointTarget(AdaRoundProblem problem, int batchColumns) {
        return new AdaRoundLoss(problem.withTarget(null), batchColumns, DataType.FLOAT).targetT;
    }

    public int batchColumns() {
        return batch;
    }

    /** ⌊W/s⌋ (row-major [outChannels, depth]), a copy. */
    public double[] floorWeights() {
        return floorW.clone();
    }

    /** Selects the columns the next evaluations use: {@code count} &lt;= batchColumns indices into X's columns. */
    public void selectColumns(int[] columns, int count) {
        if (count < 1 || count > batch) throw new IllegalArgumentException("column count " + count + " outside [1, " + batch + "]");
        float[] x = p.inputs();
        for (int g = 0; g < groups; g++) {
            if (direct) {
                int base = g * batch * depth;
                for (int j = 0; j < count; j++) {
                    int src = columns[j] * stride + g * depth;
                    for (int d = 0; d < depth; d++) xDirect[base + j * depth + d] = x[src + d];
                }
                java.util.Arrays.fill(xDirect, base + count * depth, base + batch * depth, 0);
            } else if (dataType == DataType.FLOAT) {
                FloatBuffer fb = xb[g].data().asNioFloat();
                for (int j = 0; j < count; j++) fb.put(j * depth, x, columns[j] * stride + g * depth, depth);
                if (count < batch) fb.put(count * depth, new float[(batch - count) * depth]);
            } else {
                DoubleBuffer db = xb[g].data().asNioDouble();
                for (int j = 0; j < count; j++) {
                    int src = columns[j] * stride + g * depth;
                    for (int d = 0; d < depth; d++) db.put(j * depth + d, x[src + d]);
                }
                for (int j = count * depth; j < batch * depth; j++) db.put(j, 0);
            }
        }
        System.arraycopy(columns, 0, selected, 0, count);
        selectedCount = count;
    }

    /**
     * L(V) on the selected columns; fills {@code grad} (row-major like V, nullable) with dL/dV. The
     * regularizer is evaluated only when λ ≠ 0 (it is off during the warm-up).
     */
    public Value evaluate(double[] v, double lambda, double beta, double[] grad) {
        int n = cout * depth;
        if (v.length != n) throw new IllegalArgumentException("V needs " + n + " values, got " + v.length);
        // W̃ = s · clip(⌊W/s⌋ + h(V), qmin − Z, qmax − Z), eq. 22 with eq. 23; σ(V) once per weight, h, h' and the
        // regularizer's term and derivative from it (the same values as RectifiedSigmoid's and RoundingRegularizer's
        // per-V functions, which evaluate σ up to five times)
        boolean regularize = lambda != 0;
        if (regularize && regScratch == null) regScratch = new double[n];
        double[] regD = regScratch;
        double reg = loops.sum(n, WEIGHT_CHUNK, (from, to) -> {
            double r = 0;
            for (int k = from; k < to; k++) {
                int c = k / depth;
                double s = channelScale[c];
                double sg = RectifiedSigmoid.sigmoid(v[k]);
                double h = RectifiedSigmoid.hOfSigmoid(sg), dh = RectifiedSigmoid.derivativeOfSigmoid(sg);
                double x = floorW[k] + h;
                if (x < lo[c]) {
                    wScratch[k] = s * lo[c];
                    dwdv[k] = 0;
                } else if (x > hi[c]) {
                    wScratch[k] = s * hi[c];
                    dwdv[k] = 0;
                } else {
                    wScratch[k] = s * x;
                    dwdv[k] = s * dh;
                }
                if (wFloat != null) wFloat[k] = (float) wScratch[k];
                if (regularize) r += RoundingRegularizer.termAndDerivative(h, dh, beta, regD, k);
            }
            return r;
        });
        double rec = reconstruct(wScratch, wFloat, grad != null);
        if (grad != null) {
            // dL/dV = dL/dW̃ ⊙ s h'(V) + λ df_reg/dV
            if (direct) System.arraycopy(gwDirect, 0, grad, 0, n);
            else loops.forEach(units.length, 1, (u0, u1) -> {
                for (int ui = u0; ui < u1; ui++) {
                    Unit u = units[ui];
                    read(u.gw, grad, (u.group * kg + u.row0) * depth, u.rows * depth, u.floatScratch);
                }
                return 0;
            });
            loops.forEach(n, WEIGHT_CHUNK, (from, to) -> {
                for (int k = from; k < to; k++) {
                    double r = grad[k] * dwdv[k];
                    if (regularize) r += lambda * regD[k];
                    grad[k] = r;
                }
                return 0;
            });
        }
        return new Value(rec, reg, lambda);
    }

    /**
     * Σ over the selected columns and all channels of (act(Ŵ X + b) − Y)² for a given weight matrix Ŵ
     * (row-major [outChannels, depth]): the squared error any rounding gives, e.g. round-to-nearest.
     */
    public double squaredError(double[] weights) {
        return reconstruct(weights, null, false) * selectedCount;
    }

    /**
     * Writes Ŵ ({@code asFloat}: the same values as float32, or null), runs Ŷ = Ŵ X_B per group, returns
     * (1/B)Σ(Ŷ − Y)²; with {@code gradient}, leaves dL/dŴ in gw.
     */
    private double reconstruct(double[] weights, float[] asFloat, boolean gradient) {
        if (direct) return reconstructDirect(weights, gradient);
        double twoOverB = 2.0 / selectedCount;
        float[] bias = p.bias();
        double outMin = p.outputMin(), outMax = p.outputMax();
        double sum = loops.sum(units.length, 1, (u0, u1) -> {
            double part = 0;
            for (int ui = u0; ui < u1; ui++) {
                Unit u = units[ui];
                int c0 = u.group * kg + u.row0, rows = u.rows;
                if (asFloat != null) u.w.data().asNioFloat().put(0, asFloat, c0 * depth, rows * depth);
                else write(u.w, weights, c0 * depth, rows * depth, u.floatScratch);
                Nd4j.exec(new Mmul(u.w, xb[u.group], u.y, 1.0, 0.0, MMulTranspose.allFalse()));
                double[] ys = u.yScratch;
                read(u.y, ys, 0, rows * batch, u.floatScratch);
                for (int j = 0; j < batch; j++) {
                    int o = j * rows;
                    if (j >= selectedCount) {
                        for (int i = 0; i < rows; i++) ys[o + i] = 0;
                        continue;
                    }
                    int t = selected[j] * cout + c0;
                    for (int i = 0; i < rows; i++) {
                        double pre = ys[o + i] + (bias == null ? 0 : bias[c0 + i]);
                        double out = pre < outMin ? outMin : pre > outMax ? outMax : pre;
                        double e = out - targetT[t + i];
                        part += e * e;
                        // dL/dŶ; the clip passes the gradient strictly inside its bounds (ReLU: where its input is positive)
                        ys[o + i] = pre <= outMin || pre >= outMax ? 0 : twoOverB * e;
                    }
                }
                if (gradient) {
                    write(u.gy, ys, 0, rows * batch, u.floatScratch);
                    Nd4j.exec(new Mmul(u.gy, xb[u.group], u.gw, 1.0, 0.0, new MMulTranspose(false, true, false)));
                }
            }
            return part;
        });
        return sum / selectedCount;
    }

    /** {@link #reconstruct} with Java loops in double over {@link #xDirect}; dL/dŴ into {@link #gwDirect}. */
    private double reconstructDirect(double[] weights, boolean gradient) {
        return smallGroupLoss(p, targetT, selected, selectedCount, batch, weights, xDirect, gradient ? gwDirect : null, null,
                loops);
    }

    /**
     * (1/B) Σ (act(Ŵ X_B + b) − Y)² on the {@code count} selected columns with the products as Java loops in double:
     * the path for groups of at most {@link #DIRECT_MAX_WEIGHTS} weights (depthwise 3×3: 9), whose gemms are too small
     * for ND4J (its per-call cost was 70× the arithmetic of a 96-channel depthwise layer's iteration,
     * {@code deploy/quantcal-bench learn}). Shared with the learn pass's reconstruction.
     *
     * @param targetT Yᵀ [columns, outChannels]; {@code selected} its rows for the batch
     * @param x       per group [depth, batch] column-major at offset g·batch·depth
     * @param gradW   null, or filled with dL/dŴ (row-major [outChannels, depth])
     * @param gradX   null, or filled with dL/dX (x's layout; zero beyond the selected columns)
     */
    public static double smallGroupLoss(AdaRoundProblem p, float[] targetT, int[] selected, int count, int batch,
                                        double[] w, double[] x, double[] gradW, double[] gradX) {
        return smallGroupLoss(p, targetT, selected, count, batch, w, x, gradW, gradX, ChunkedLoops.SEQUENTIAL);
    }

    /** {@link #smallGroupLoss} with the groups in chunks on {@code loops}' threads (the same values). */
    public static double smallGroupLoss(AdaRoundProblem p, float[] targetT, int[] selected, int count, int batch,
                                        double[] w, double[] x, double[] gradW, double[] gradX, ChunkedLoops loops) {
        int groups = p.groups(), kg = p.groupChannels(), depth = p.depth(), cout = p.outChannels();
        double twoOverB = 2.0 / count;
        float[] bias = p.bias();
        double outMin = p.outputMin(), outMax = p.outputMax();
        int groupChunk = Math.max(1, 1024 / (kg * depth));
        double sum = loops.sum(groups, groupChunk, (g0, g1) -> {
            double part = 0;
            if (gradW != null) java.util.Arrays.fill(gradW, g0 * kg * depth, g1 * kg * depth, 0);
            if (gradX != null) java.util.Arrays.fill(gradX, g0 * batch * depth, g1 * batch * depth, 0);
            for (int g = g0; g < g1; g++) {
                int base = g * batch * depth;
                for (int j = 0; j < count; j++) {
                    int col = base + j * depth;
                    int t = selected[j] * cout + g * kg;
                    for (int i = 0; i < kg; i++) {
                        int c = g * kg + i, row = c * depth;
                        double acc = 0;
                        for (int d = 0; d < depth; d++) acc += w[row + d] * x[col + d];
                        double pre = acc + (bias == null ? 0 : bias[c]);
                        double out = pre < outMin ? outMin : pre > outMax ? outMax : pre;
                        double e = out - targetT[t + i];
                        part += e * e;
                        if (gradW == null || pre <= outMin || pre >= outMax) continue;
                        double gy = twoOverB * e;
                        for (int d = 0; d < depth; d++) gradW[row + d] += gy * x[col + d];
                        if (gradX != null) for (int d = 0; d < depth; d++) gradX[col + d] += w[row + d] * gy;
                    }
                }
            }
            return part;
        });
        return sum / count;
    }

    /** Y = act(W X + b) on every column, in this loss's precision: the default target. */
    private float[] computeTarget() {
        float[] t = new float[p.columns() * cout];
        double[] w = new double[cout * depth];
        float[] fw = p.weight();
        for (int k = 0; k < w.length; k++) w[k] = fw[k];
        int[] cols = new int[batch];
        float[] bias = p.bias();
        for (int start = 0; start < p.columns(); start += batch) {
            int count = Math.min(batch, p.columns() - start);
            for (int j = 0; j < count; j++) cols[j] = start + j;
            selectColumns(cols, count);
            for (int g = 0; g < groups; g++) {
                if (direct) {
                    for (int j = 0; j < count; j++) {
                        for (int i = 0; i < kg; i++) {
                            int c = g * kg + i;
                            double y = 0;
                            for (int d = 0; d < depth; d++) y += w[c * depth + d] * xDirect[g * batch * depth + j * depth + d];
                            y += bias == null ? 0 : bias[c];
                            t[(start + j) * cout + c] = (float) (y < p.outputMin() ? p.outputMin() : y > p.outputMax() ? p.outputMax() : y);
                        }
                    }
                }
            }
            for (Unit u : units) {
                int c0 = u.group * kg + u.row0;
                write(u.w, w, c0 * depth, u.rows * depth, u.floatScratch);
                Nd4j.exec(new Mmul(u.w, xb[u.group], u.y, 1.0, 0.0, MMulTranspose.allFalse()));
                read(u.y, u.yScratch, 0, u.rows * batch, u.floatScratch);
                for (int j = 0; j < count; j++) {
                    for (int i = 0; i < u.rows; i++) {
                        int c = c0 + i;
                        double y = u.yScratch[j * u.rows + i] + (bias == null ? 0 : bias[c]);
                        t[(start + j) * cout + c] = (float) (y < p.outputMin() ? p.outputMin() : y > p.outputMax() ? p.outputMax() : y);
                    }
                }
            }
        }
        return t;
    }

    /**
     * src[from, from + length) into a's buffer from its start, in a's type (float32 through {@code floatScratch} and one
     * bulk copy: per-element puts into the direct buffer cost more than the gemm's Java-side work). Shared with the
     * learned quantizers' reconstruction.
     */
    public static void write(INDArray a, double[] src, int from, int length, float[] floatScratch) {
        if (a.dataType() == DataType.FLOAT) {
            for (int i = 0; i < length; i++) floatScratch[i] = (float) src[from + i];
            a.data().asNioFloat().put(0, floatScratch, 0, length);
        } else {
            a.data().asNioDouble().put(src, from, length).rewind();
        }
    }

    /** The first {@code length} values of a's buffer into dst from {@code from} ({@link #write}'s inverse). */
    public static void read(INDArray a, double[] dst, int from, int length, float[] floatScratch) {
        if (a.dataType() == DataType.FLOAT) {
            a.data().asNioFloat().get(0, floatScratch, 0, length);
            for (int i = 0; i < length; i++) dst[from + i] = floatScratch[i];
        } else {
            a.data().asNioDouble().get(dst, from, length);
        }
    }
}
