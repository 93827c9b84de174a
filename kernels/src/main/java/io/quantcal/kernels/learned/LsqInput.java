package io.quantcal.kernels.learned;

import io.quantcal.kernels.runtime.ChunkedLoops;
import io.quantcal.kernels.quant.QuantParams;

/**
 * LSQ's quantizer on a layer's input columns (one step s_a per tensor, the calibrated zero point kept): X̂ and
 * ∂x̂/∂s_a of every raw value ({@link LsqQuantizer}), and dL/ds_a = g_a Σ dL/dX̂ ⊙ ∂x̂/∂s_a with g_a = 1/√(N·Q_P), N the
 * values of one column. With no input parameters the input stays in floating point (X̂ = X, no step gradient).
 *
 * <p>{@link #freeze} fixes the rounding residuals and grid regions at one step, for gradient checks (the surrogate whose
 * exact derivative is the straight-through gradient, see {@link LsqLoss}). Shared by {@link LsqLoss} and
 * {@link AdaRoundLsqLoss}; not thread-safe.
 */
final class LsqInput {

    final boolean quantize;
    final int lo, hi;
    /** X̂ and ∂x̂/∂s_a after {@link #apply}, in the raw buffer's layout. */
    final double[] xHat, dxds;
    private final double gradientScale;
    private double[] frozen;
    private byte[] region;

    LsqInput(String layer, QuantParams input, int valuesPerColumn, int length) {
        if (input != null && input.perChannel()) {
            throw new IllegalArgumentException("layer " + layer + ": LSQ learns one input step; the input's parameters are per channel");
        }
        quantize = input != null;
        lo = input == null ? 0 : input.qmin() - input.zeroPoint(0);
        hi = input == null ? 0 : input.qmax() - input.zeroPoint(0);
        gradientScale = input == null ? 0 : LsqQuantizer.gradientScale(valuesPerColumn, lo, hi);
        xHat = new double[length];
        dxds = new double[length];
    }

    /** Forgets a {@link #freeze}: the next {@link #apply} rounds for real. */
    void unfreeze() {
        frozen = null;
    }

    void freeze(double[] raw, double sa) {
        frozen = new double[raw.length];
        region = new byte[raw.length];
        for (int i = 0; i < raw.length; i++) {
            double v = LsqQuantizer.ratio(raw[i], sa);
            region[i] = (byte) (v <= lo ? -1 : v >= hi ? 1 : 0);
            frozen[i] = Math.rint(v) - v;
        }
    }

    /** Values per chunk of the element-wise loops (fixed: the chunking, not the thread count, orders the sum). */
    static final int CHUNK = 16384;

    /** X̂ and ∂x̂/∂s_a of {@code raw} at step {@code sa} (ignored when the input is not quantized). */
    void apply(double[] raw, double sa) {
        apply(raw, sa, ChunkedLoops.SEQUENTIAL);
    }

    /** {@link #apply(double[], double)} in chunks on {@code loops}' threads. */
    void apply(double[] raw, double sa, ChunkedLoops loops) {
        double[] fr = frozen;
        loops.forEach(raw.length, CHUNK, (from, to) -> {
            for (int i = from; i < to; i++) {
                if (!quantize) {
                    xHat[i] = raw[i];
                    dxds[i] = 0;
                } else if (fr != null) {
                    int reg = region[i];
                    xHat[i] = reg == 0 ? raw[i] + sa * fr[i] : sa * (reg < 0 ? lo : hi);
                    dxds[i] = reg == 0 ? fr[i] : reg < 0 ? lo : hi;
                } else if (raw[i] == 0) {
                    // ReLU's zeros and the convolutions' padding: code 0 (lo <= 0 <= hi), no step gradient at v = 0
                    xHat[i] = 0;
                    dxds[i] = 0;
                } else {
                    double v = LsqQuantizer.ratio(raw[i], sa);
                    xHat[i] = LsqQuantizer.code(v, lo, hi) * sa;
                    dxds[i] = v <= lo ? lo : v >= hi ? hi : Math.rint(v) - v;   // LSQ eq. 3
                }
            }
            return 0;
        });
    }

    /** dL/ds_a from dL/dX̂ ({@code gradX}, the raw buffer's layout) after an {@link #apply}; 0 unquantized. */
    double stepGradient(double[] gradX) {
        return stepGradient(gradX, ChunkedLoops.SEQUENTIAL);
    }

    /** {@link #stepGradient(double[])}: the chunks' partial sums added in chunk order, on {@code loops}' threads. */
    double stepGradient(double[] gradX, ChunkedLoops loops) {
        if (!quantize) return 0;
        double dsa = loops.sum(gradX.length, CHUNK, (from, to) -> {
            double part = 0;
            for (int i = from; i < to; i++) part += gradX[i] * dxds[i];
            return part;
        });
        return gradientScale * dsa;
    }
}
