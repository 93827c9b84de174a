package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The progress line's form and its estimate of what is left. */
class ProgressTest {

    static final long S = 1_000_000_000L;

    @Test
    void aLineSaysTheStepTheTimeSoFarAndWhatIsLeft() {
        assertEquals("progress: easyquant wave 3/6, weight grid, 7 layers, 101 candidates (step 9, 12.0 s elapsed, about 24.0 s left)",
                Progress.line("easyquant wave 3/6, weight grid, 7 layers, 101 candidates", 9, 12 * S, 1.0 / 3));
        // nothing done yet, or an unknown share: no estimate
        assertEquals("progress: calibrate (step 1, 0.0 s elapsed)", Progress.line("calibrate", 1, 0, 0));
        assertEquals("progress: write (step 1, 1.5 s elapsed)", Progress.line("write", 1, 3 * S / 2, Double.NaN));
        assertEquals("progress: x (step 2, 1 min 30 s elapsed, about 4 min 30 s left)", Progress.line("x", 2, 90 * S, 0.25));
        assertEquals("2 h 05 min", Progress.duration(7500 * S));
    }

    @Test
    void theShareOfAPassInPartsOfEqualWeight() {
        assertEquals(0.0, Progress.share(1, 4, 0));
        assertEquals(0.5, Progress.share(3, 4, 0));
        assertEquals(0.625, Progress.share(3, 4, 0.5));
        assertEquals(0.75, Progress.share(3, 4, 7), "a step count past its bound stops at the part's end");
        assertEquals("quantcal-r1-easyquant", Progress.group("r1", "easyquant"));
    }
}
