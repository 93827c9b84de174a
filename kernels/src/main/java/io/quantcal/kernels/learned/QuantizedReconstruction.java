package io.quantcal.kernels.learned;

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
 * j·depth (column-major [depth, B] per group). Buffers as in {@link AdaRoundLoss}. Not thread-safe.
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
    private final INDArray[] wq, xq, yb, gy, gw, gx;
    private final double[] yScratch;
    private final float[] floatScratch;
    private final int[] selected;
    private int selectedCount;
    /** Small groups: the products run as Java loops ({@link #directLoss}), no ND4J buffers. */
    private final boolean direct;

    /** Groups with at most this many weights (output channels per group × depth) skip ND4J: AdaRound's threshold. */
    static final int DIRECT_MAX_WEIGHTS = AdaRoundLoss.DIRECT_MAX_WEIGHTS;

    /** The products through ND4J, or as Java loops when a group holds at most {@link #DIRECT_MAX_WEIGHTS} weights. */
    QuantizedReconstruction(AdaRoundProblem problem, int batchColumns, DataType dataType) {
        this(problem, batchColumns, dataType, problem.groupChannels() * problem.depth() <= DIRECT_MAX_WEIGHTS);
    }

    /** {@code direct}: the products as Java loops in double whatever the group size (tests compare both paths). */
    QuantizedReconstruction(AdaRoundProblem problem, int batchColumns, DataType dataType, boolean direct) {
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
        int buffers = direct ? 0 : groups;
        wq = new INDArray[groups];
        xq = new INDArray[groups];
        yb = new INDArray[groups];
        gy = new INDArray[groups];
        gw = new INDArray[groups];
        gx = new INDArray[groups];
        for (int g = 0; g < buffers; g++) {
            wq[g] = Nd4j.create(dataType, new long[] {kg, depth}, 'c');
            xq[g] = Nd4j.create(dataType, new long[] {depth, batch}, 'f');
            yb[g] = Nd4j.create(dataType, new long[] {kg, batch}, 'f');
            gy[g] = Nd4j.create(dataType, new long[] {kg, batch}, 'f');
            gw[g] = Nd4j.create(dataType, new long[] {kg, depth}, 'c');
            gx[g] = Nd4j.create(dataType, new long[] {depth, batch}, 'f');
        }
        raw = new double[groups * batch * depth];
        gradW = new double[cout * depth];
        gradX = new double[raw.length];
        yScratch = new double[kg * batch];
        floatScratch = new float[Math.max(kg * batch, Math.max(kg * depth, depth * batch))];
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
        double sum = 0;
        double twoOverB = 2.0 / selectedCount;
        float[] bias = p.bias();
        double outMin = p.outputMin(), outMax = p.outputMax();
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
            if (gradient) {
                write(gy[g], yScratch, 0, kg * batch);
                Nd4j.exec(new Mmul(gy[g], xq[g], gw[g], 1.0, 0.0, new MMulTranspose(false, true, false)));
                read(gw[g], gradW, g * kg * depth, kg * depth);
                if (inputGradient) {
                    Nd4j.exec(new Mmul(wq[g], gy[g], gx[g], 1.0, 0.0, new MMulTranspose(true, false, false)));
                    read(gx[g], gradX, g * batch * depth, depth * batch);
                }
            }
        }
        return sum / selectedCount;
    }

    /** {@link #loss} with the three products as Java loops ({@link AdaRoundLoss#smallGroupLoss}). */
    private double directLoss(double[] wHat, double[] xHat, boolean gradient, boolean inputGradient) {
        return AdaRoundLoss.smallGroupLoss(p, targetT, selected, selectedCount, batch, wHat, xHat, gradient ? gradW : null,
                gradient && inputGradient ? gradX : null);
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
