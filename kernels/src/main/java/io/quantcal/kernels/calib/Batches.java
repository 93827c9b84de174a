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
        long n = 0;
        List<float[]> batch = new ArrayList<>(batchSize);
        while (samples.hasNext()) {
            batch.add(samples.next());
            if (batch.size() == batchSize || !samples.hasNext()) {
                sink.accept(runner.run(Map.of(inputName, stack(inputName, batch, sampleShape))));
                n += batch.size();
                batch.clear();
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
