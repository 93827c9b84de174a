package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.QuantGrid;
import java.util.Optional;

/**
 * Clips the tails: symmetric, c = the p-th percentile of |x|; affine, [(100 − p)-th, p-th] percentile of x. Both
 * read from the histogram with linear interpolation within a bin, and never reach past the observed min and max.
 */
public record PercentileCalibrator(double percentile) implements Calibrator {

    public PercentileCalibrator {
        if (!(percentile >= 50 && percentile <= 100)) {
            throw new IllegalArgumentException("percentile must be in [50, 100] (e.g. 99.99), got " + percentile);
        }
    }

    @Override
    public boolean needsHistogram() {
        return true;
    }

    @Override
    public String name() {
        return "percentile";
    }

    @Override
    public Range calibrate(TensorStats stats, QuantGrid grid, boolean symmetric) {
        MinMaxStats m = stats.requireValues(name());
        Histogram h = stats.requireHistogram(name());
        if (symmetric) {
            double c = Math.min(h.foldAbs().quantile(percentile / 100), m.absMax());
            return Range.symmetric(c);
        }
        double lo = Math.max(m.min(), h.quantile((100 - percentile) / 100));
        double hi = Math.min(m.max(), h.quantile(percentile / 100));
        return new Range(Math.min(lo, hi), Math.max(lo, hi));
    }

    /** Symmetric grids need |x|, so bins symmetric about 0; affine grids bins over [min, max]. */
    @Override
    public Optional<HistogramSpec> histogramSpec(MinMaxStats firstPass, boolean symmetric) {
        return Optional.of(symmetric ? HistogramSpec.symmetric(firstPass) : HistogramSpec.range(firstPass));
    }
}
