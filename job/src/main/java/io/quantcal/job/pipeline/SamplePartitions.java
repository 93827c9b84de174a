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

    /**
     * The good samples of a partition as they come, without holding them: the partition's samples decoded at once
     * would take gigabytes at real input sizes (1000 samples of 3x640x640 floats are 4.9 GB). Bad samples stop the
     * job or are noted in {@link Streamed#skipped} as the iteration passes them. For work whose result does not
     * depend on the sample order (statistics, sums per batch); what needs id order uses {@link #split}.
     */
    static Streamed stream(Iterator<Sample> it, boolean skipBad) {
        return new Streamed(it, skipBad);
    }

    /** The good samples of one partition, one at a time; {@link #skipped} is complete once the iteration ends. */
    static final class Streamed implements Iterator<Sample> {
        private final Iterator<Sample> it;
        private final boolean skipBad;
        private final List<String> skipped = new ArrayList<>();
        private Sample next;

        private Streamed(Iterator<Sample> it, boolean skipBad) {
            this.it = it;
            this.skipBad = skipBad;
        }

        @Override
        public boolean hasNext() {
            while (next == null && it.hasNext()) {
                Sample s = it.next();
                if (s.ok()) {
                    next = s;
                } else if (skipBad) {
                    skipped.add(s.error());
                } else {
                    throw new BadSampleException(s.error()
                            + " (set quantcal.calibration.skip-bad-samples = true to skip such samples)");
                }
            }
            return next != null;
        }

        @Override
        public Sample next() {
            if (!hasNext()) throw new java.util.NoSuchElementException();
            Sample s = next;
            next = null;
            return s;
        }

        List<String> skipped() {
            return skipped;
        }
    }

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
