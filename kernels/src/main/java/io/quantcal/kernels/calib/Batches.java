package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
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
        int size = inputs.runBatch(batchSize);
        long n = 0;
        List<SampleInputs> batch = new ArrayList<>(size);
        while (samples.hasNext()) {
            batch.add(samples.next());
            if (batch.size() == size || !samples.hasNext()) {
                sink.accept(runner.runInputs(inputs.stack(batch)));
                n += batch.size();
                batch.clear();
            }
        }
        return n;
    }

    /** {@link #forEach(ModelRunner, ModelInputs, Iterator, int, Consumer)} for a model with one float input. */
    public static long forEach(ModelRunner runner, String inputName, long[] sampleShape, Iterator<float[]> samples,
                               int batchSize, Consumer<Map<String, FloatTensor>> sink) {
        return forEach(runner, ModelInputs.singleFloat(inputName, sampleShape), floats(samples), batchSize, sink);
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
