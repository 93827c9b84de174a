package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.job.data.BadSampleException;
import io.quantcal.job.data.Sample;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A partition's samples streamed, not held: good ones pass through, bad ones are skipped or stop the job. */
class SamplePartitionsStreamTest {

    private static List<Sample> partition() {
        return List.of(new Sample(0, "a.png", 1, io.quantcal.kernels.runtime.SampleInputs.of(new float[] {1}), null), Sample.bad(1, "b.png", 2, "image b.png cannot be decoded"),
                new Sample(2, "c.png", 3, io.quantcal.kernels.runtime.SampleInputs.of(new float[] {3}), null));
    }

    @Test
    void goodSamplesPassThroughAndBadOnesAreNotedAsTheyArePassed() {
        SamplePartitions.Streamed s = SamplePartitions.stream(partition().iterator(), true);
        List<Long> ids = new ArrayList<>();
        while (s.hasNext()) ids.add(s.next().id());
        assertEquals(List.of(0L, 2L), ids);
        assertEquals(List.of("image b.png cannot be decoded"), s.skipped());
    }

    @Test
    void aBadSampleStopsTheJobWhenNotSkipping() {
        SamplePartitions.Streamed s = SamplePartitions.stream(partition().iterator(), false);
        assertEquals(0L, s.next().id());
        BadSampleException e = assertThrows(BadSampleException.class, s::next);
        assertTrue(e.getMessage().startsWith("image b.png cannot be decoded (set quantcal.calibration.skip-bad-samples"), e.getMessage());
    }
}
