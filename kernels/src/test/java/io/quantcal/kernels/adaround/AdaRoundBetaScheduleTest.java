package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Warm-up and β annealing at specific iterations (T = 10 000, warm-up 20%, β 20 → 2). */
class AdaRoundBetaScheduleTest {

    @Test
    void warmupKeepsTheRegularizerOffForTheFirstFifth() {
        BetaSchedule s = BetaSchedule.of(10_000);
        assertEquals(2000, s.warmupEnd());
        assertFalse(s.regularizerActive(0));
        assertFalse(s.regularizerActive(1999));
        assertTrue(s.regularizerActive(2000));
        assertTrue(s.regularizerActive(9999));
    }

    @Test
    void cosineDecayAsAimet() {
        BetaSchedule s = BetaSchedule.of(10_000);
        assertEquals(20.0, s.beta(2000), 1e-12);
        // rel = 0.5: 2 + 9·(1 + cos(π/2)) = 11
        assertEquals(11.0, s.beta(6000), 1e-12);
        // rel = 0.25: 2 + 9·(1 + √½)
        assertEquals(2 + 9 * (1 + Math.sqrt(0.5)), s.beta(4000), 1e-12);
        // last iteration, rel = 7999/8000
        assertEquals(2 + 9 * (1 + Math.cos(Math.PI * 7999 / 8000)), s.beta(9999), 1e-12);
        assertTrue(s.beta(9999) > 2 && s.beta(9999) < 2.001);
    }

    @Test
    void linearDecayAsBrecq() {
        BetaSchedule s = new BetaSchedule(10_000, 0.2, 20, 2, BetaSchedule.Decay.LINEAR);
        assertEquals(20.0, s.beta(2000), 1e-12);
        assertEquals(11.0, s.beta(6000), 1e-12);
        assertEquals(15.5, s.beta(4000), 1e-12);
        assertEquals(2 + 18.0 / 8000, s.beta(9999), 1e-12);
        assertEquals(2.0, s.beta(10_000), 1e-12);
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new BetaSchedule(0, 0.2, 20, 2, BetaSchedule.Decay.COSINE));
        assertThrows(IllegalArgumentException.class, () -> new BetaSchedule(10, 1.0, 20, 2, BetaSchedule.Decay.COSINE));
    }
}
