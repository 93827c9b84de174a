package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.SampleInputs;
import io.quantcal.kernels.stats.ExponentHistogram;
import io.quantcal.kernels.stats.HistogramSpec;
import io.quantcal.kernels.stats.MinMaxAccumulator;
import io.quantcal.kernels.stats.TensorStats;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One calibration task: run the model over a stream of samples in batches and fold the captured tensors
 * into mergeable statistics (min/max, and histograms over fixed bins when {@code specs} names them).
 * The result depends only on the samples, not on how they are batched: min/max and histogram counts are
 * order-free, which is what makes the merged table independent of the partitioning.
 */
public final class ActivationStatistics {

    private ActivationStatistics() {}

    /**
     * Statistics of one partition: per tensor, in the order of {@code tensors}; how many samples; and, where asked for,
     * per-channel sums of some tensors ({@link SampleChannelSums}, exact across samples: E[x] for bias correction).
     */
    public record Partial(Map<String, TensorStats> stats, long samples, Map<String, SampleChannelSums> channelSums)
            implements Serializable {

        public Partial(Map<String, TensorStats> stats, long samples) {
            this(stats, samples, Map.of());
        }

        public Partial merge(Partial other) {
            Map<String, TensorStats> out = new LinkedHashMap<>(stats);
            other.stats.forEach((k, v) -> out.merge(k, v, TensorStats::merge));
            Map<String, SampleChannelSums> sums = new LinkedHashMap<>(channelSums);
            other.channelSums.forEach((k, v) -> sums.merge(k, v, SampleChannelSums::merge));
            return new Partial(out, samples + other.samples, sums);
        }
    }

    /**
     * @param runner      a runner that captures {@code tensors}
     * @param inputName   the model input fed with the samples
     * @param sampleShape one sample's shape (without the batch dimension)
     * @param samples     sample values, row-major
     * @param batchSize   samples per ONNX Runtime call
     * @param specs       histogram bins per tensor; tensors without an entry get min/max only
     */
    public static Partial collect(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                                  int batchSize, List<String> tensors, Map<String, HistogramSpec> specs) {
        return collect(runner, ModelInputs.singleFloat(inputName, sampleShape), Batches.floats(samples), batchSize, tensors,
                specs);
    }

    /**
     * @param inputs    the model inputs every sample feeds (names, element types, shapes, fixed batch)
     * @param samples   each sample's values for every input
     * @param batchSize samples per ONNX Runtime call (1 when the model fixes its batch dimension to 1)
     * @param specs     histogram bins per tensor; tensors without an entry get min/max only
     */
    public static Partial collect(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples, int batchSize,
                                  List<String> tensors, Map<String, HistogramSpec> specs) {
        return collect(runner, inputs, samples, BatchBudget.fixed(batchSize), "", tensors, specs);
    }

    /**
     * As {@link #collect(ModelRunner, ModelInputs, Iterator, int, List, Map)}, with batches sized by a memory budget
     * (see {@link BatchBudget}); {@code what} names the run in a memory error.
     */
    public static Partial collect(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                  BatchBudget budget, String what, List<String> tensors, Map<String, HistogramSpec> specs) {
        Map<String, TensorStats> acc = new LinkedHashMap<>();
        long n = Batches.forEach(runner, inputs, samples, budget, what, out -> {
            for (String t : tensors) {
                FloatTensor v = out.get(t);
                if (v == null) throw new IllegalStateException("tensor " + t + " was not captured by the runner");
                acc.merge(t, TensorStats.of(t, v.data(), specs.get(t)), TensorStats::merge);
            }
        });
        return new Partial(acc, n);
    }

    /**
     * Exponent-binned histograms of {@code tensors} ({@link ExponentHistogram}, with exact count, min and max), one
     * accumulator per tensor filled batch after batch: the single pass over the data a histogram calibrator needs,
     * since the bins do not depend on the data. {@link TensorStats#withHistogram} then places the regular bins.
     *
     * @throws IllegalArgumentException naming the tensor when a captured value is NaN or infinite
     */
    public static Partial collectHistograms(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                            BatchBudget budget, String what, List<String> tensors) {
        return collectHistograms(runner, inputs, samples, budget, what, tensors, Map.of());
    }

    /**
     * As {@link #collectHistograms(ModelRunner, ModelInputs, Iterator, BatchBudget, String, List)}, and in the same run
     * the per-channel sums of the tensors {@code sumChannels} names (tensor → its channels, axis 1), which
     * {@code runner} must capture too: {@link SampleChannelSums}.
     */
    public static Partial collectHistograms(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                            BatchBudget budget, String what, List<String> tensors,
                                            Map<String, Integer> sumChannels) {
        return collectPinned(runner, inputs, samples, budget, what, tensors, sumChannels, true);
    }

    /**
     * The exact count, min and max of {@code tensors}, which {@code runner} captures: read where ONNX Runtime wrote
     * them ({@link Batches#forEachPinned}) by a {@link MinMaxAccumulator} per tensor. The same statistics as
     * {@link #collect} without histograms, through the same capture as the histograms. (Reduced inside the session
     * instead, by ReduceMin, ReduceMax and a ReduceSum to catch a NaN, each a pass of its own over the tensor, they
     * cost the same: 1.24× and 1.26× plain inference in task CPU time on the bundled 28×28 model, of which 1.11× is
     * ONNX Runtime writing the tensors out; at 224×224 the same within the machine's noise.)
     *
     * @throws IllegalArgumentException naming the tensor and the index when a captured value is NaN or infinite
     */
    public static Partial collectMinMax(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                        BatchBudget budget, String what, List<String> tensors) {
        return collectMinMax(runner, inputs, samples, budget, what, tensors, Map.of());
    }

    /**
     * As {@link #collectMinMax(ModelRunner, ModelInputs, Iterator, BatchBudget, String, List)}, and in the same run the
     * per-channel sums of the tensors {@code sumChannels} names (tensor → its channels, axis 1), which {@code runner}
     * must capture too: {@link SampleChannelSums}.
     */
    public static Partial collectMinMax(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                        BatchBudget budget, String what, List<String> tensors,
                                        Map<String, Integer> sumChannels) {
        return collectPinned(runner, inputs, samples, budget, what, tensors, sumChannels, false);
    }

    private static Partial collectPinned(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                         BatchBudget budget, String what, List<String> tensors,
                                         Map<String, Integer> sumChannels, boolean histograms) {
        Map<String, ExponentHistogram.Accumulator> hist = new LinkedHashMap<>();
        Map<String, MinMaxAccumulator> range = new LinkedHashMap<>();
        for (String t : tensors) {
            if (histograms) hist.putIfAbsent(t, new ExponentHistogram.Accumulator());
            else range.putIfAbsent(t, new MinMaxAccumulator());
        }
        Map<String, SampleChannelSums> sums = sums(sumChannels);
        java.util.LinkedHashSet<String> captures = new java.util.LinkedHashSet<>(tensors);
        captures.addAll(sums.keySet());
        // read where ONNX Runtime wrote them (pinned buffers): no array per tensor and batch
        long n = Batches.forEachPinned(runner, inputs, samples, budget, what, List.copyOf(captures), (batch, t, values) -> {
            SampleChannelSums s = sums.get(t);
            if (s != null) s.add(values.asFloatBuffer(), batch);
            ExponentHistogram.Accumulator h = hist.get(t);
            if (h != null) h.add(t, values);
            MinMaxAccumulator m = range.get(t);
            if (m != null) m.add(t, values);
        });
        Map<String, TensorStats> stats = new LinkedHashMap<>();
        for (String t : captures) {
            if (hist.containsKey(t)) stats.put(t, TensorStats.of(t, hist.get(t).finish()));
            else if (range.containsKey(t)) stats.put(t, new TensorStats(t, range.get(t).finish(), null));
        }
        return new Partial(stats, n, sums);
    }

    private static Map<String, SampleChannelSums> sums(Map<String, Integer> sumChannels) {
        Map<String, SampleChannelSums> sums = new LinkedHashMap<>();
        sumChannels.forEach((t, c) -> sums.put(t, new SampleChannelSums(t, c)));
        return sums;
    }

    /**
     * Per-channel sums of each captured tensor (axis 1 of NCHW or [N, C]), one map per sample in the order of
     * {@code samples}: E[x] per input channel for empirical bias correction. Per sample, not per batch, so that the
     * caller can add them in sample order: how the samples were batched or partitioned then changes no bit of the sum.
     */
    public static List<Map<String, io.quantcal.kernels.dfq.ChannelMeans>> channelSums(ModelRunner runner, String inputName,
            long[] sampleShape, Iterator<float[]> samples, int batchSize, List<String> tensors) {
        return channelSums(runner, ModelInputs.singleFloat(inputName, sampleShape), Batches.floats(samples), batchSize,
                tensors);
    }

    /** {@link #channelSums(ModelRunner, String, long[], Iterator, int, List)} for samples of any model inputs. */
    public static List<Map<String, io.quantcal.kernels.dfq.ChannelMeans>> channelSums(ModelRunner runner,
            ModelInputs inputs, Iterator<SampleInputs> samples, int batchSize, List<String> tensors) {
        return channelSums(runner, inputs, samples, BatchBudget.fixed(batchSize), "", tensors);
    }

    /** As above, with batches sized by a memory budget ({@link BatchBudget}); {@code what} names the run in an error. */
    public static List<Map<String, io.quantcal.kernels.dfq.ChannelMeans>> channelSums(ModelRunner runner,
            ModelInputs inputs, Iterator<SampleInputs> samples, BatchBudget budget, String what, List<String> tensors) {
        List<Map<String, io.quantcal.kernels.dfq.ChannelMeans>> out = new ArrayList<>();
        Batches.forEach(runner, inputs, samples, budget, what, batch -> {
            int n = -1;
            for (String t : tensors) {
                FloatTensor v = batch.get(t);
                if (v == null) throw new IllegalStateException("tensor " + t + " was not captured by the runner");
                n = (int) v.shape()[0];
            }
            for (int k = 0; k < n; k++) {
                Map<String, io.quantcal.kernels.dfq.ChannelMeans> m = new LinkedHashMap<>();
                for (String t : tensors) {
                    FloatTensor v = batch.get(t).batch(k, k + 1);
                    m.put(t, io.quantcal.kernels.dfq.ChannelMeans.of(v.data(), v.shape()));
                }
                out.add(m);
            }
        });
        return out;
    }
}
