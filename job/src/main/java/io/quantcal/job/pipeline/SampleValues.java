package io.quantcal.job.pipeline;

import io.quantcal.job.data.Sample;
import io.quantcal.kernels.runtime.SampleInputs;
import java.util.Iterator;

/** The values of a stream of samples, every model input's (what the kernels' batch loops take). */
public record SampleValues(Iterator<Sample> samples) implements Iterator<SampleInputs> {

    @Override
    public boolean hasNext() {
        return samples.hasNext();
    }

    @Override
    public SampleInputs next() {
        return samples.next().inputs();
    }
}
