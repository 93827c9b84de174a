package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * One layer's reconstruction loss with QIL's interval quantizers ({@link QilQuantizer}) on its weight (c_W, d_W, γ_W
 * per weight step: per output channel with per-channel weights) and on its input (c_X, d_X, γ = 1), and the
 * straight-through gradients with respect to them and W. The input is learned only when its calibrated grid is
 * unsigned with zero point 0 (a non-negative activation, as QIL's T_X assumes); any other input keeps its calibrated
 * uniform quantizer, fixed. The gemms are {@link QuantizedReconstruction}'s. As in {@link LsqLoss}, the rounding can
 * be {@link #freeze frozen} for gradient checks. Not thread-safe.
 */
public final class QilLoss {

    /** Where evaluate writes the gradients. */
    public static final class Gradient {
        public final double[] c, d, gamma, weights;
        public double inputC, inputD;

        public Gradient(int steps, int weights) {
            c = new double[steps];
            d = new double[steps];
            gamma = new double[steps];
            this.weights = new double[weights];
        }
    }

    private final QuantizedReconstruction r;
    private final int depth, cout, steps, levels;
    /** 0: input in floating point; 1: fixed calibrated uniform grid; 2: learned interval. */
    private final int inputMode;
    private final int inputLevels, alo, ahi;
    private final double inputScale;
    private final double[] wHat, dwdc, dwdd, dwdg, dwdw;
    private final double[] xHat, dxdc, dxdd;
    private double[] frozenW, frozenX;
    private byte[] regionW, regionX;

    public QilLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType) {
        this(problem, input, batchColumns, dataType, ChunkedLoops.SEQUENTIAL);
    }

    /** The reconstruction's gemm units and loops on {@code loops}' threads (the caller closes it). */
    public QilLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, ChunkedLoops loops) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, loops));
    }

    /** With the products through ND4J ({@code direct} false) or as Java loops (true), whatever the group size. */
    QilLoss(AdaRoundProblem problem, QuantParams input, int batchColumns, DataType dataType, boolean direct) {
        this(problem, input, new QuantizedReconstruction(problem, batchColumns, dataType, direct, ChunkedLoops.SEQUENTIAL));
    }

    private QilLoss(AdaRoundProblem problem, QuantParams input, QuantizedReconstruction reconstruction) {
        for (int c = 0; c < problem.scale().length; c++) {
            if (problem.zeroPoint()[c] != 0 || problem.qmin() != -problem.qmax()) {
                throw new IllegalArgumentException("layer " + problem.layer() + ": QIL quantizes weights symmetrically; the"
                        + " weight grid is [" + problem.qmin() + ", " + problem.qmax() + "] with zero point "
                        + problem.zeroPoint()[c] + " (use symmetric weights)");
            }
        }
        if (input != null && input.perChannel()) {
            throw new IllegalArgumentException("layer " + problem.layer() + ": QIL learns one input interval; the input's parameters are per channel");
        }
        this.r = reconstruction;
        this.depth = problem.depth();
        this.cout = problem.outChannels();
        this.steps = problem.scale().length;
        this.levels = problem.qmax();
        inputMode = input == null ? 0 : learnsInput(input) ? 2 : 1;
        inputLevels = input == null ? 0 : input.qmax();
        alo = input == null ? 0 : input.qmin() - input.zeroPoint(0);
        ahi = input == null ? 0 : input.qmax() - input.zeroPoint(0);
        inputScale = input == null ? Double.NaN : input.scale(0);
        int n = cout * depth;
        wHat = new double[n];
        dwdc = new double[n];
        dwdd = new double[n];
        dwdg = new double[n];
        dwdw = new double[n];
        xHat = new double[r.raw.length];
        dxdc = new double[r.raw.length];
        dxdd = new double[r.raw.length];
    }

    /** QIL's T_X applies to a non-negative activation: an unsigned grid with zero point 0. */
    public static boolean learnsInput(QuantParams input) {
        return input != null && !input.grid().signed() && input.zeroPoint(0) == 0;
    }

    public boolean learnsInput() {
        return inputMode == 2;
    }

    public int batchColumns() {
        return r.batch;
    }

    public int steps() {
        return steps;
    }

    public void selectColumns(int[] columns, int count) {
        r.selectColumns(columns, count);
        frozenX = null;
    }

    /** Freezes the rounding residuals k/q_D − T and the regions of W and the selected columns at these parameters. */
    void freeze(double[] w, double[] c, double[] d, double[] gamma, double cx, double dx) {
        int n = cout * depth;
        frozenW = new double[n];
        regionW = new byte[n];
        for (int k = 0; k < n; k++) {
            int g = k / depth, s = steps == 1 ? 0 : g;
            double a = Math.abs(w[k]);
            regionW[k] = (byte) QilQuantizer.region(a, c[s], d[s]);
            double t = QilQuantizer.transform(a, c[s], d[s], gamma[s]);
            frozenW[k] = Math.rint(levels * t) / levels - t;
        }
        double[] raw = r.raw;
        frozenX = new double[raw.length];
        regionX = new byte[raw.length];
        if (inputMode == 2) {
            for (int i = 0; i < raw.length; i++) {
                double a = Math.max(0, raw[i]);
                regionX[i] = (byte) QilQuantizer.region(a, cx, dx);
                double t = QilQuantizer.transform(a, cx, dx, 1);
                frozenX[i] = Math.rint(inputLevels * t) / inputLevels - t;
            }
        }
    }

    /**
     * L on the selected columns for W (row-major [outChannels, depth]), the weight intervals (c, d, γ per step) and
     * the input interval (c_X, d_X; ignored unless the input is learned); fills {@code grad} (nullable).
     */
    public double evaluate(double[] w, double[] c, double[] d, double[] gamma, double cx, double dx, Gradient grad) {
        int n = cout * depth;
        for (int k = 0; k < n; k++) {
            int s = steps == 1 ? 0 : k / depth;
            double a = Math.abs(w[k]), sigma = Math.signum(w[k]);
            double cs = c[s], ds = d[s], gs = gamma[s], range = cs + ds;
            int reg = frozenW != null ? regionW[k] : QilQuantizer.region(a, cs, ds);
            if (reg < 0 || sigma == 0) {
                wHat[k] = dwdc[k] = dwdd[k] = dwdg[k] = dwdw[k] = 0;
            } else if (reg > 0) {
                wHat[k] = sigma * range;
                dwdc[k] = dwdd[k] = sigma;
                dwdg[k] = dwdw[k] = 0;
            } else {
                double t = Math.max(0, QilQuantizer.linear(a, cs, ds));
                double u = Math.pow(t, gs);
                double q = frozenW != null ? u + frozenW[k] : Math.rint(levels * u) / levels;   // k/q_D
                double du = gs * Math.pow(Math.max(t, QilQuantizer.MIN_T), gs - 1);             // dT/dt
                wHat[k] = sigma * range * q;
                dwdc[k] = sigma * (q - range * du * 0.5 / ds);
                dwdd[k] = sigma * (q - range * du * 0.5 * (a - cs) / (ds * ds));
                dwdg[k] = t > 0 ? sigma * range * u * Math.log(t) : 0;
                dwdw[k] = range * du * 0.5 / ds;
            }
        }
        double[] raw = r.raw;
        for (int i = 0; i < raw.length; i++) {
            if (inputMode == 0) {
                xHat[i] = raw[i];
            } else if (inputMode == 1) {
                xHat[i] = LsqQuantizer.code(LsqQuantizer.ratio(raw[i], inputScale), alo, ahi) * (float) inputScale;
            } else {
                double a = raw[i], range = cx + dx;
                int reg = a <= 0 ? -1 : frozenX != null ? regionX[i] : QilQuantizer.region(a, cx, dx);
                if (reg < 0) {
                    xHat[i] = dxdc[i] = dxdd[i] = 0;
                } else if (reg > 0) {
                    xHat[i] = range;
                    dxdc[i] = dxdd[i] = 1;
                } else {
                    double t = Math.max(0, QilQuantizer.linear(a, cx, dx));
                    double q = frozenX != null ? t + frozenX[i] : Math.rint(inputLevels * t) / inputLevels;
                    xHat[i] = range * q;
                    dxdc[i] = q - range * 0.5 / dx;
                    dxdd[i] = q - range * 0.5 * (a - cx) / (dx * dx);
                }
            }
        }
        double loss = r.loss(wHat, xHat, grad != null, grad != null && inputMode == 2);
        if (grad != null) {
            java.util.Arrays.fill(grad.c, 0);
            java.util.Arrays.fill(grad.d, 0);
            java.util.Arrays.fill(grad.gamma, 0);
            double[] gw = r.gradW;
            for (int k = 0; k < n; k++) {
                int s = steps == 1 ? 0 : k / depth;
                grad.c[s] += gw[k] * dwdc[k];
                grad.d[s] += gw[k] * dwdd[k];
                grad.gamma[s] += gw[k] * dwdg[k];
                grad.weights[k] = gw[k] * dwdw[k];
            }
            double gc = 0, gd = 0;
            if (inputMode == 2) {
                double[] gx = r.gradX;
                for (int i = 0; i < gx.length; i++) {
                    gc += gx[i] * dxdc[i];
                    gd += gx[i] * dxdd[i];
                }
            }
            grad.inputC = gc;
            grad.inputD = gd;
        }
        return loss;
    }

    /** Mean over all columns and output channels of (act(Ŵ X̂ + b) − Y)² with QIL's own quantizers. */
    public double meanSquaredError(double[] w, double[] c, double[] d, double[] gamma, double cx, double dx) {
        return r.meanSquaredError(this::selectColumns, () -> evaluate(w, c, d, gamma, cx, dx, null));
    }
}
