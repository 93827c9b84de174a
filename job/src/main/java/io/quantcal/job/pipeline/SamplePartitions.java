package io.quantcal.job.pipeline;

import io.quantcal.job.data.BadSampleException;
import io.quantcal.job.data.Sample;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The samples of one partition, in id order, with bad ones either stopping the job (naming the file or row)
 * or set aside and reported (quantcal.calibration.skip-bad-samples).
 */
final class SamplePartitions {

    private SamplePartitions() {}

    record Split(List<Sample> good, List<String> skipped) implements Serializable {}

    static Split split(Iterator<Sample> it, boolean skipBad) {
        List<Sample> good = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        while (it.hasNext()) {
            Sample s = it.next();
            if (s.ok()) {
                good.add(s);
            } else if (skipBad) {
                skipped.add(s.error());
            } else {
                throw new BadSampleException(s.error()
                        + " (set quantcal.calibration.skip-bad-samples = true to skip such samples)");
            }
        }
        good.sort(java.util.Comparator.comparingLong(Sample::id));
        return new Split(good, skipped);
    }
}
