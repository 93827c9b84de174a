package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.InputTensor;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.SampleInputs;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/** Batching of sample streams for ONNX Runtime runs. */
public final class Batches {

    private Batches() {}

    /**
     * Runs {@code runner} over {@code samples} in batches of {@code batchSize} (the last one shorter; 1 when the model
     * fixes its batch dimension to 1: {@link ModelInputs#runBatch}), feeding every model input, and hands each batch's
     * outputs to {@code sink}. Returns the number of samples.
     */
    public static long forEach(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples, int batchSize,
                               Consumer<Map<String, FloatTensor>> sink) {
        return forEach(runner, inputs, samples, BatchBudget.fixed(batchSize), "", sink);
    }

    /**
     * Runs {@code runner} over {@code samples} in batches sized by {@code budget} (and 1 when the model fixes its batch
     * dimension to 1), feeding every model input, and hands each batch's outputs to {@code sink}. Under a memory limit
     * the first run takes one sample and measures what it returns; the following runs take as many samples as the
     * budget allows (at most its batch size). Returns the number of samples.
     *
     * @param what names the run in a memory error
     */
    public static long forEach(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples, BatchBudget budget,
                               String what, Consumer<Map<String, FloatTensor>> sink) {
        int cap = inputs.runBatch(budget.maxBatch());
        long n = 0;
        boolean measured = budget.unlimited() || cap == 1;
        int size = measured ? cap : 1;
        List<SampleInputs> batch = new ArrayList<>(size);
        while (samples.hasNext()) {
            batch.add(samples.next());
            if (batch.size() == size || !samples.hasNext()) {
                Map<String, InputTensor> x = inputs.stack(batch);
                Map<String, FloatTensor> out = runner.runInputs(x);
                int k = batch.size();
                n += k;
                batch.clear();
                if (!measured) {
                    size = Math.min(cap, budget.batchSize((BatchBudget.bytes(out) + inputBytes(x)) / k, what));
                    measured = true;
                }
                sink.accept(out);
            }
        }
        return n;
    }

    /**
     * What {@link #forEachPinned} hands over: the batch's sample count, the tensor, its float32 values as bytes in
     * native order (position 0, valid until the next batch).
     */
    @FunctionalInterface
    public interface PinnedSink {
        void accept(int batch, String tensor, java.nio.ByteBuffer values);
    }

    /**
     * Captured values per run that the reading that follows finds in the core's cache: 2 MiB, about one core's
     * second-level cache.
     */
    public static final long CACHED_CAPTURE_BYTES = 2L << 20;

    /** Samples per run whose captured values stay within {@link #CACHED_CAPTURE_BYTES}: at least 1. */
    public static int cachedRun(long capturedBytesPerSample) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, CACHED_CAPTURE_BYTES / Math.max(1, capturedBytesPerSample)));
    }

    /**
     * As {@link #forEach(ModelRunner, ModelInputs, Iterator, BatchBudget, String, Consumer)}, with the captured tensors
     * written into buffers the runner lends this call ({@link ModelRunner#runPinned}) and handed to {@code sink} one
     * tensor at a time, with the batch's sample count: no array per tensor and batch. The first run takes one sample,
     * to measure; the others take as many as the budget allows, and at most as many as keep the captured values of a
     * run within {@link #CACHED_CAPTURE_BYTES} (at least one), so that {@code sink} reads them from the cache they
     * were written through rather than from memory (measured on the bundled 28×28 model, histograms of 6 tensors:
     * task CPU time 10% less at runs of 8 samples and 7% less at 16 than at 32; ONNX Runtime's own time per sample the
     * same at 11 as at 32).
     * What a sink computes must not depend on how the samples are batched.
     *
     * @throws CaptureOverBudget when one sample's captured tensors together exceed the budget (measured on the
     *     first run, whose values {@code sink} has then already seen): each tensor's bytes, so that the caller can
     *     capture them in groups
     */
    public static long forEachPinned(ModelRunner runner, ModelInputs inputs, Iterator<SampleInputs> samples,
                                     BatchBudget budget, String what, List<String> captures, PinnedSink sink) {
        int cap = inputs.runBatch(budget.maxBatch());
        long n = 0;
        boolean measured = cap == 1;
        int size = measured ? cap : 1;
        List<SampleInputs> batch = new ArrayList<>(size);
        Map<String, Long> first = new java.util.LinkedHashMap<>();
        try (ModelRunner.PinnedBuffers pinned = runner.pinned(captures)) {
            while (samples.hasNext()) {
                batch.add(samples.next());
                if (batch.size() == size || !samples.hasNext()) {
                    Map<String, InputTensor> x = inputs.stack(batch);
                    int k = batch.size();
                    boolean measuring = !measured;
                    long bytes = runner.runPinned(x, pinned, (t, values) -> {
                        if (measuring) first.merge(t, (long) values.remaining() / k, Long::sum);
                        sink.accept(k, t, values);
                    });
                    n += k;
                    batch.clear();
                    if (!measured) {
                        long perSample = (bytes + inputBytes(x)) / k;
                        CaptureOverBudget.check(budget, perSample, what, first, inputBytes(x) / k);
                        size = Math.min(Math.min(cap, budget.batchSize(perSample, what)), cachedRun(bytes / k));
                        measured = true;
                    }
                }
            }
        }
        return n;
    }

    /** Bytes of the fed tensors (their element counts times the element sizes). */
    public static long inputBytes(Map<String, InputTensor> x) {
        long b = 0;
        for (InputTensor t : x.values()) b += t.bytes();
        return b;
    }

    /** {@link #forEach(ModelRunner, ModelInputs, Iterator, int, Consumer)} for a model with one float input. */
    public static long forEach(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                               int batchSize, Consumer<Map<String, FloatTensor>> sink) {
        return forEach(runner, ModelInputs.singleFloat(inputName, sampleShape), floats(samples), batchSize, sink);
    }

    /** {@link #forEach(ModelRunner, ModelInputs, Iterator, BatchBudget, String, Consumer)} for one float input. */
    public static long forEach(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                               BatchBudget budget, String what, Consumer<Map<String, FloatTensor>> sink) {
        return forEach(runner, ModelInputs.singleFloat(inputName, sampleShape), floats(samples), budget, what, sink);
    }

    /** Single-input float samples as {@link SampleInputs}. */
    public static Iterator<SampleInputs> floats(Iterator<float[]> samples) {
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return samples.hasNext();
            }

            @Override
            public SampleInputs next() {
                return SampleInputs.of(samples.next());
            }
        };
    }

    /** Stacks samples into one batch tensor [N, ...sampleShape]. */
    public static FloatTensor stack(String name, List<float[]> samples, long[] sampleShape) {
        int size = 1;
        for (long d : sampleShape) size *= (int) d;
        float[] data = new float[size * samples.size()];
        for (int i = 0; i < samples.size(); i++) {
            float[] s = samples.get(i);
            if (s.length != size) {
                throw new IllegalArgumentException("sample " + i + " of the batch for " + name + " has " + s.length
                        + " values, expected " + size);
            }
            System.arraycopy(s, 0, data, i * size, size);
        }
        long[] shape = new long[sampleShape.length + 1];
        shape[0] = samples.size();
        System.arraycopy(sampleShape, 0, shape, 1, sampleShape.length);
        return new FloatTensor(name, shape, data);
    }
}
