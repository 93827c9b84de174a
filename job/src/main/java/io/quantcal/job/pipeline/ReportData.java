package io.quantcal.job.pipeline;

import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.stats.TensorStats;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the run's report.html shows that the run summary does not hold (it would bloat run.json): the merged
 * activation statistics calibrate gathered, with the range each tensor was given. One per run, in its
 * {@link RunContext}; written by the passes on the driver, read once when the report is written.
 */
public final class ReportData {

    /**
     * One activation tensor as calibrate left it.
     *
     * @param stats  merged statistics (a histogram only where the calibrator needed one; minmax takes one pass)
     * @param params the chosen parameters, whose grid range is the clip
     */
    public record Activation(String tensor, TensorStats stats, QuantParams params, String calibrator) {}

    private final Map<String, Activation> activations = new LinkedHashMap<>();

    public synchronized void activation(String tensor, TensorStats stats, QuantParams params, String calibrator) {
        activations.put(tensor, new Activation(tensor, stats, params, calibrator));
    }

    public synchronized List<Activation> activations() {
        return new ArrayList<>(activations.values());
    }
}
