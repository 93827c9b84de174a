package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/** Batching of sample streams for ONNX Runtime runs. */
public final class Batches {

    private Batches() {}

    /**
     * Runs {@code runner} over {@code samples} in batches of {@code batchSize} (the last one shorter), feeding
     * {@code inputName}, and hands each batch's outputs to {@code sink}. Returns the number of samples.
     */
    public static long forEach(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                               int batchSize, Consumer<Map<String, FloatTensor>> sink) {
        return forEach(runner, inputName, sampleShape, samples, BatchBudget.fixed(batchSize), "", sink);
    }

    /**
     * Runs {@code runner} over {@code samples} in batches sized by {@code budget}, feeding {@code inputName}, and hands
     * each batch's outputs to {@code sink}. Under a memory limit the first run takes one sample and measures what it
     * returns; the following runs take as many samples as the budget allows (at most its batch size). Returns the
     * number of samples.
     *
     * @param what names the run in a memory error
     */
    public static long forEach(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                               BatchBudget budget, String what, Consumer<Map<String, FloatTensor>> sink) {
        long n = 0;
        boolean measured = budget.unlimited();
        int size = measured ? budget.maxBatch() : 1;
        List<float[]> batch = new ArrayList<>(size);
        while (samples.hasNext()) {
            batch.add(samples.next());
            if (batch.size() == size || !samples.hasNext()) {
                FloatTensor x = stack(inputName, batch, sampleShape);
                Map<String, FloatTensor> out = runner.run(Map.of(inputName, x));
                int k = batch.size();
                n += k;
                batch.clear();
                if (!measured) {
                    size = budget.batchSize((BatchBudget.bytes(out) + 4L * x.data().length) / k, what);
                    measured = true;
                }
                sink.accept(out);
            }
        }
        return n;
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
