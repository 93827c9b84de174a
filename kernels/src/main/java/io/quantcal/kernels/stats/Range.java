package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.io.Serializable;

/**
 * The real range [min, max] a calibrator chose for a tensor. For a symmetric grid only the clip
 * c = max(|min|, |max|) matters, and symmetric calibrators return [−c, c].
 */
public record Range(double min, double max) implements Serializable {

    public Range {
        if (!Double.isFinite(min) || !Double.isFinite(max) || !(min <= max)) {
            throw new IllegalArgumentException("range must be finite with min <= max, got [" + min + ", " + max + "]");
        }
        // −0 + 0 = +0: [−0, 0] and [0, 0] are one range and should be equal records
        min += 0.0;
        max += 0.0;
    }

    /** Symmetric range [−c, c]. */
    public static Range symmetric(double clip) {
        return new Range(-clip, clip);
    }

    /** c = max(|min|, |max|). */
    public double clip() {
        return Math.max(Math.abs(min), Math.abs(max));
    }

    /**
     * Per-tensor parameters on {@code grid} covering this range, by the rules deployment uses: symmetric,
     * s = c / qmax with zero point 0 (SymmetricQuantizer); affine, AffineQuantizer.fromRange (widened to
     * include 0, scale (max − min)/(qmax − qmin), zero point round(qmin − min/s)).
     */
    public QuantParams toParams(QuantGrid grid, boolean symmetric) {
        if (symmetric) return QuantParams.perTensor(grid, true, symmetricStep(grid, clip()), 0);
        return AffineQuantizer.fromRange(grid, min, max);
    }

    /** s = c / qmax in float32, or 1 for a zero clip (an all-zero tensor), as SymmetricQuantizer.fromClip. */
    static double symmetricStep(QuantGrid grid, double clip) {
        double s = (float) SymmetricQuantizer.step(grid, clip);
        return s >= Float.MIN_NORMAL ? s : 1.0;
    }
}
