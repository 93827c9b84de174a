package io.quantcal.job.pipeline;

import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.stats.TensorStats;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the run's report.html shows that the run summary does not hold (it would bloat run.json): the merged
 * activation statistics calibrate gathered, with the range each tensor was given; and the state after each pass that
 * chose parameters ({@link #METHODS}), which evaluate measures one by one. One per run, in its {@link RunContext};
 * written on the driver, read once by evaluate and when the report is written.
 */
public final class ReportData {

    /**
     * One activation tensor as calibrate left it.
     *
     * @param stats  merged statistics (a histogram only where the calibrator needed one; minmax takes one pass)
     * @param params the chosen parameters, whose grid range is the clip
     */
    public record Activation(String tensor, TensorStats stats, QuantParams params, String calibrator) {}

    /** The passes that choose quantization parameters, whose result evaluate measures per layer one after another. */
    public static final List<String> METHODS = List.of("calibrate", "easyquant", "adaround", "learn", "bias-correct");

    private final Map<String, Activation> activations = new LinkedHashMap<>();
    private final Map<String, PipelineState> stages = new LinkedHashMap<>();

    public synchronized void activation(String tensor, TensorStats stats, QuantParams params, String calibrator) {
        activations.put(tensor, new Activation(tensor, stats, params, calibrator));
    }

    public synchronized List<Activation> activations() {
        return new ArrayList<>(activations.values());
    }

    /** The state after pass {@code pass}, if it is one of the {@link #METHODS}. */
    public synchronized void stage(String pass, PipelineState state) {
        if (METHODS.contains(pass)) stages.put(pass, state);
    }

    /** The states after each method that ran, in pipeline order. */
    public synchronized Map<String, PipelineState> stages() {
        return new LinkedHashMap<>(stages);
    }
}
