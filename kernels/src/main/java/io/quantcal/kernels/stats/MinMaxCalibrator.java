package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.QuantGrid;
import java.util.Optional;

/** The observed range [min, max]: no clipping. A symmetric grid then covers max(|min|, |max|). */
public record MinMaxCalibrator() implements Calibrator {

    @Override
    public boolean needsHistogram() {
        return false;
    }

    @Override
    public String name() {
        return "minmax";
    }

    @Override
    public Range calibrate(TensorStats stats, QuantGrid grid, boolean symmetric) {
        MinMaxStats m = stats.requireValues(name());
        return new Range(m.min(), m.max());
    }

    @Override
    public Optional<HistogramSpec> histogramSpec(MinMaxStats firstPass, boolean symmetric) {
        return Optional.empty();
    }
}
