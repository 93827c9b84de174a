package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.util.Optional;

/**
 * The range that minimizes the expected squared quantization error E[(x − x̂)²], rounding and clipping error
 * together, over the tensor's histogram. Candidates: symmetric, c_k = k/N · amax; affine, [k/N · min, k/N · max];
 * k = 1..N. Each candidate becomes parameters by {@link Range#toParams} and x̂ is computed with
 * AffineQuantizer, the ONNX rule that deployment uses, so the error is that of the deployed grid.
 *
 * <p>Each bin's mass is taken at its centre (as pytorch-quantization's MSE calibrator does): good while the step
 * is wider than a bin; with steps much narrower than a bin (16 bits) the rounding term is only approximate and the
 * clipping term dominates the choice.
 */
public record MseCalibrator(int candidates) implements Calibrator {

    /** Number of candidate clips N: a 0.5 % grid over (0, amax]. */
    public static final int DEFAULT_CANDIDATES = 200;

    public MseCalibrator {
        if (candidates < 1) throw new IllegalArgumentException("MSE calibration needs at least one candidate, got " + candidates);
    }

    public MseCalibrator() {
        this(DEFAULT_CANDIDATES);
    }

    @Override
    public boolean needsHistogram() {
        return true;
    }

    @Override
    public String name() {
        return "mse";
    }

    @Override
    public Range calibrate(TensorStats stats, QuantGrid grid, boolean symmetric) {
        MinMaxStats m = stats.requireValues(name());
        Histogram h = stats.requireHistogram(name());
        Range best = null;
        double bestError = Double.POSITIVE_INFINITY;
        for (int k = 1; k <= candidates; k++) {
            double f = (double) k / candidates;
            Range r = symmetric ? Range.symmetric(f * m.absMax()) : new Range(f * m.min(), f * m.max());
            double e = expectedSquaredError(h, r.toParams(grid, symmetric));
            // on equal error keep the larger range: the one that clips less
            if (e <= bestError) {
                bestError = e;
                best = r;
            }
        }
        return best;
    }

    /** Symmetric grids bins symmetric about 0, affine grids bins over [min, max]. */
    @Override
    public Optional<HistogramSpec> histogramSpec(MinMaxStats firstPass, boolean symmetric) {
        return Optional.of(symmetric ? HistogramSpec.symmetric(firstPass) : HistogramSpec.range(firstPass));
    }

    /**
     * Σ_b n_b (x_b − x̂_b)² / Σ_b n_b over the histogram's bins b, x_b the bin centre (in float32, as a tensor value
     * would be) and x̂_b its fake-quantized value under per-tensor {@code p}.
     */
    public static double expectedSquaredError(Histogram h, QuantParams p) {
        if (p.perChannel()) throw new IllegalArgumentException("expected squared error over one histogram needs per-tensor parameters, got " + p);
        float s = (float) p.scale(0);
        int z = p.zeroPoint(0);
        double sum = 0;
        long n = 0;
        HistogramSpec spec = h.spec();
        for (int b = 0; b < spec.bins(); b++) {
            long c = h.count(b);
            if (c == 0) continue;
            float x = (float) spec.center(b);
            float xHat = AffineQuantizer.dequantize(AffineQuantizer.quantize(x, s, z, p.qmin(), p.qmax()), s, z);
            double e = (double) x - xHat;
            sum += c * e * e;
            n += c;
        }
        if (n == 0) throw new IllegalArgumentException("expected squared error over an empty histogram " + spec);
        return sum / n;
    }
}
