package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.AdaRoundLoss;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The reconstruction part every learned quantizer shares: on a batch of columns, L = (1/B) Σ (act(Ŵ X̂_B + b) − Y)²
 * for given quantized weights Ŵ and inputs X̂, and its gradients dL/dŴ = dL/dŶ X̂ᵀ and dL/dX̂ = Ŵᵀ dL/dŶ, with
 * dL/dŶ = (2/B)(Ŷ − Y) ⊙ [inside the output clip]. The quantizers ({@link LsqLoss}, {@link QilLoss}) turn W and the
 * raw batch {@link #raw} into Ŵ and X̂ and chain the two gradients to their parameters.
 *
 * <p>Layouts: W, Ŵ, dL/dŴ row-major [outChannels, depth]; X, X̂, dL/dX̂ per group g at offset g·B·depth, column j at
 * j·depth (column-major [depth, B] per group). Buffers as in {@link AdaRoundLoss}, but split by columns: a group's
 * batch runs in units of {@link #UNIT_COLUMNS} columns, each with its own X̂, Ŷ, dL/dŶ, dL/dX̂ and partial dL/dŴ, so
 * that the units run on {@link ChunkedLoops}' threads (one-thread ND4J gemms side by side) with no reduction but
 * dL/dŴ's, which adds the units' partials in unit order: the same values whatever the thread count. Not thread-safe.
 */
final class QuantizedReconstruction {

    final AdaRoundProblem p;
    final int batch, groups, kg, depth, cout, stride;
    /** The selected columns' raw inputs, per group [depth, B] column-major; zero beyond the selected count. */
    final double[] raw;
    /** dL/dŴ and dL/dX̂ after a {@link #loss} with gradients. */
    final double[] gradW, gradX;
    private final DataType dataType;
    private final float[] targetT;
    /** Per group: Ŵ [kg, depth] 'c'. */
    private final INDArray[] wq;
    private final Unit[] units;
    private final float[] floatScratch;
    /** The threads of this task's loops (the quantizers' element-wise loops run on them too). */
    final ChunkedLoops loops;

    /** Columns per unit (fixed: the units, not the thread count, order the sums). */
    static final int UNIT_COLUMNS = 512;

    /** Columns [col0, col0 + cols) of group g's batch, and their buffers. */
    private static final class Unit {
        final int group, col0, cols;
        final INDArray xq, y, gy, gw, gx;
        final double[] yScratch, gwPart;
        final float[] floatScratch;

        Unit(int group, int col0, int cols, int kg, int depth, DataType type) {
            this.group = group;
            this.col0 = col0;
            this.cols = cols;
            xq = Nd4j.create(type, new long[] {depth, cols}, 'f');
            y = Nd4j.create(type, new long[] {kg, cols}, 'f');
            gy = Nd4j.create(type, new long[] {kg, cols}, 'f');
            gw = Nd4j.create(type, new long[] {kg, depth}, 'c');
            gx = Nd4j.create(type, new long[] {depth, cols}, 'f');
            yScratch = new double[kg * cols];
            gwPart = new double[kg * depth];
            floatScratch = new float[Math.max(kg * cols, Math.max(kg * depth, depth * cols))];
        }
    }

    private final int[] selected;
    private int selectedCount;
    /** Small groups: the products run as Java loops ({@link #directLoss}), no ND4J buffers. */
    private final boolean direct;

    /** Groups with at most this many weights (output channels per group × depth) skip ND4J: AdaRound's threshold. */
    static final int DIRECT_MAX_WEIGHTS = AdaRoundLoss.DIRECT_MAX_WEIGHTS;

    /** The products through ND4J, or as Java loops when a group holds at most {@link #DIRECT_MAX_WEIGHTS} weights. */
    QuantizedReconstruction(AdaRoundProblem problem, int batchColumns, DataType dataType, ChunkedLoops loops) {
        this(problem, batchColumns, dataType, problem.groupChannels() * problem.depth() <= DIRECT_MAX_WEIGHTS, loops);
    }

    /** {@code direct}: the products as Java loops in double whatever the group size (tests compare both paths). */
    QuantizedReconstruction(AdaRoundProblem problem, int batchColumns, DataType dataType, boolean direct, ChunkedLoops loops) {
        if (batchColumns < 1) throw new IllegalArgumentException("batch of columns must be >= 1, got " + batchColumns);
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("learned quantizer gemms run in FLOAT or DOUBLE, got " + dataType);
        }
        this.p = problem;
        this.dataType = dataType;
        this.batch = Math.min(batchColumns, problem.columns());
        this.groups = problem.groups();
        this.kg = problem.groupChannels();
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.stride = groups * depth;
        this.direct = direct;
        this.loops = loops;
        int buffers = direct ? 0 : groups;
        wq = new INDArray[groups];
        java.util.List<Unit> us = new java.util.ArrayList<>();
        for (int g = 0; g < buffers; g++) {
            wq[g] = Nd4j.create(dataType, new long[] {kg, depth}, 'c');
            for (int c = 0; c < batch; c += UNIT_COLUMNS) us.add(new Unit(g, c, Math.min(UNIT_COLUMNS, batch - c), kg, depth, dataType));
        }
        units = us.toArray(new Unit[0]);
        raw = new double[groups * batch * depth];
        gradW = new double[cout * depth];
        gradX = new double[raw.length];
        floatScratch = new float[kg * depth];
        selected = new int[batch];
        targetT = problem.target() != null ? problem.target() : AdaRoundLoss.floatingPointTarget(problem, batchColumns);
    }

    int selectedCount() {
        return selectedCount;
    }

    void selectColumns(int[] columns, int count) {
        if (count < 1 || count > batch) throw new IllegalArgumentException("column count " + count + " outside [1, " + batch + "]");
        float[] x = p.inputs();
        for (int g = 0; g < groups; g++) {
            int base = g * batch * depth;
            for (int j = 0; j < count; j++) {
                int src = columns[j] * stride + g * depth;
                for (int d = 0; d < depth; d++) raw[base + j * depth + d] = x[src + d];
            }
            for (int j = count * depth; j < batch * depth; j++) raw[base + j] = 0;
        }
        System.arraycopy(columns, 0, selected, 0, count);
        selectedCount = count;
    }

    /** L for Ŵ {@code wHat} and X̂ {@code xHat}; with {@code gradient}, leaves dL/dŴ in gradW and dL/dX̂ in gradX. */
    double loss(double[] wHat, double[] xHat, boolean gradient, boolean inputGradient) {
        if (direct) return directLoss(wHat, xHat, gradient, inputGradient);
        double twoOverB = 2.0 / selectedCount;
        float[] bias = p.bias();
        double outMin = p.outputMin(), outMax = p.outputMax();
        for (int g = 0; g < groups; g++) AdaRoundLoss.write(wq[g], wHat, g * kg * depth, kg * depth, floatScratch);
        double sum = loops.sum(units.length, 1, (u0, u1) -> {
            double part = 0;
            for (int ui = u0; ui < u1; ui++) {
                Unit u = units[ui];
                int g = u.group, cols = u.cols;
                AdaRoundLoss.write(u.xq, xHat, g * batch * depth + u.col0 * depth, cols * depth, u.floatScratch);
                Nd4j.exec(new Mmul(wq[g], u.xq, u.y, 1.0, 0.0, MMulTranspose.allFalse()));
                double[] ys = u.yScratch;
                AdaRoundLoss.read(u.y, ys, 0, kg * cols, u.floatScratch);
                for (int jj = 0; jj < cols; jj++) {
                    int j = u.col0 + jj, o = jj * kg;
                    if (j >= selectedCount) {
                        for (int i = 0; i < kg; i++) ys[o + i] = 0;
                        continue;
                    }
                    int t = selected[j] * cout + g * kg;
                    for (int i = 0; i < kg; i++) {
                        double pre = ys[o + i] + (bias == null ? 0 : bias[g * kg + i]);
                        double out = pre < outMin ? outMin : pre > outMax ? outMax : pre;
                        double e = out - targetT[t + i];
                        part += e * e;
                        ys[o + i] = pre <= outMin || pre >= outMax ? 0 : twoOverB * e;
                    }
                }
                if (gradient) {
                    AdaRoundLoss.write(u.gy, ys, 0, kg * cols, u.floatScratch);
                    Nd4j.exec(new Mmul(u.gy, u.xq, u.gw, 1.0, 0.0, new MMulTranspose(false, true, false)));
                    AdaRoundLoss.read(u.gw, u.gwPart, 0, kg * depth, u.floatScratch);
                    if (inputGradient) {
                        Nd4j.exec(new Mmul(wq[g], u.gy, u.gx, 1.0, 0.0, new MMulTranspose(true, false, false)));
                        AdaRoundLoss.read(u.gx, gradX, g * batch * depth + u.col0 * depth, depth * cols, u.floatScratch);
                    }
                }
            }
            return part;
        });
        if (gradient) {
            // dL/dŴ: each group's units' partials (over their columns) added in unit order
            int perGroup = units.length / groups;
            loops.forEach(cout * depth, LsqInput.CHUNK, (from, to) -> {
                for (int k = from; k < to; k++) {
                    int g = k / (kg * depth), local = k - g * kg * depth;
                    double acc = 0;
                    for (int ui = g * perGroup; ui < (g + 1) * perGroup; ui++) acc += units[ui].gwPart[local];
                    gradW[k] = acc;
                }
                return 0;
            });
        }
        return sum / selectedCount;
    }

    /** {@link #loss} with the three products as Java loops ({@link AdaRoundLoss#smallGroupLoss}). */
    private double directLoss(double[] wHat, double[] xHat, boolean gradient, boolean inputGradient) {
        return AdaRoundLoss.smallGroupLoss(p, targetT, selected, selectedCount, batch, wHat, xHat, gradient ? gradW : null,
                gradient && inputGradient ? gradX : null, loops);
    }

    /**
     * Mean over all columns and output channels of a loss's batch error: {@code select} picks the columns batch by
     * batch in order, {@code batchLoss} returns (1/B) Σ over the selected ones.
     */
    double meanSquaredError(java.util.function.ObjIntConsumer<int[]> select, java.util.function.DoubleSupplier batchLoss) {
        int[] cols = new int[batch];
        int columns = p.columns();
        double sum = 0;
        for (int start = 0; start < columns; start += batch) {
            int count = Math.min(batch, columns - start);
            for (int j = 0; j < count; j++) cols[j] = start + j;
            select.accept(cols, count);
            sum += batchLoss.getAsDouble() * count;
        }
        return sum / ((double) columns * cout);
    }
}
