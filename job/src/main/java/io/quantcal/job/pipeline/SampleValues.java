package io.quantcal.job.pipeline;

import io.quantcal.job.data.Sample;
import java.util.Iterator;

/** The values of a stream of samples (what the kernels' batch loops take). */
public record SampleValues(Iterator<Sample> samples) implements Iterator<float[]> {

    @Override
    public boolean hasNext() {
        return samples.hasNext();
    }

    @Override
    public float[] next() {
        return samples.next().values();
    }
}
