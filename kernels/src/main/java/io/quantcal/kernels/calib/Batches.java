package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
import java.util.List;

/** Stacks samples into one batch tensor [N, ...sampleShape]. */
public final class Batches {

    private Batches() {}

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
