package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.QuantGrid;
import java.io.Serializable;
import java.util.Optional;

/**
 * Turns a tensor's merged statistics into the real range its quantization grid should cover. Calibrators are
 * values (Serializable, no state): the driver may ship one to executors.
 *
 * <p>The job's calibration is one pass over the data: min/max, or, for a calibrator that {@link #needsHistogram
 * needs a histogram}, an {@link ExponentHistogram} (bins fixed by the float's bits, exact min/max alongside), which
 * is re-binned into the bins {@link #histogramSpec} places from the merged min/max; then {@link #calibrate} on the
 * merged {@link TensorStats}.
 */
public interface Calibrator extends Serializable {

    /** The name {@link Calibrators#byName} knows it by, as written in the scale table's {@code method} column. */
    String name();

    /**
     * The range for a tensor quantized on {@code grid}, symmetric ([−c, c]) or affine.
     *
     * @throws IllegalArgumentException naming the tensor when the statistics are empty or lack a histogram this
     *     calibrator needs
     */
    Range calibrate(TensorStats stats, QuantGrid grid, boolean symmetric);

    /** Whether {@link #calibrate} reads a histogram (then {@link #histogramSpec} is never empty). */
    boolean needsHistogram();

    /** The histogram bins this calibrator needs, placed from the min/max statistics; empty when it needs no histogram. */
    Optional<HistogramSpec> histogramSpec(MinMaxStats firstPass, boolean symmetric);
}
