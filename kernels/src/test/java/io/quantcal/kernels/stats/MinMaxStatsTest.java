package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MinMaxStatsTest {

    @Test
    void handWorkedValues() {
        MinMaxStats s = MinMaxStats.of("t", new float[] {1.5f, -2f, 4f, 0.25f});
        assertEquals(4, s.count());
        assertEquals(-2.0, s.min());
        assertEquals(4.0, s.max());
        assertEquals(3.75, s.sum());
        assertEquals(2.25 + 4 + 16 + 0.0625, s.sumOfSquares());
        assertEquals(0.9375, s.mean());
        assertEquals(22.3125 / 4 - 0.9375 * 0.9375, s.variance());
        assertEquals(4.0, s.absMax());
    }

    @Test
    void mergeOfPartsIsTheWhole() {
        float[] x = Samples.gaussian(10_001, 3);
        MinMaxStats whole = MinMaxStats.of(x);
        for (int cut : new int[] {0, 1, 5000, 10_000, 10_001}) {
            MinMaxStats merged = MinMaxStats.of(Arrays.copyOfRange(x, 0, cut)).merge(MinMaxStats.of(Arrays.copyOfRange(x, cut, x.length)));
            assertEquals(whole.count(), merged.count());
            assertEquals(whole.min(), merged.min());
            assertEquals(whole.max(), merged.max());
            assertEquals(whole.sum(), merged.sum(), 1e-9 * whole.sumOfSquares());
            assertEquals(whole.sumOfSquares(), merged.sumOfSquares(), 1e-12 * whole.sumOfSquares());
        }
    }

    @Test
    void mergeCommutesExactlyAndEmptyIsItsIdentity() {
        MinMaxStats a = MinMaxStats.of(Samples.gaussian(777, 1)), b = MinMaxStats.of(Samples.uniform(333, -9, 2, 2));
        assertEquals(a.merge(b), b.merge(a));
        assertEquals(a, a.merge(MinMaxStats.empty()));
        assertEquals(a, MinMaxStats.empty().merge(a));
        assertEquals(MinMaxStats.empty(), MinMaxStats.of(new float[0]));
        assertTrue(MinMaxStats.empty().isEmpty());
        assertEquals(0.0, MinMaxStats.empty().absMax());
    }

    @Test
    void nonFiniteValuesAreRefusedNamingTheTensor() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MinMaxStats.of("conv1/relu_out", new float[] {1, 2, Float.NaN}));
        assertTrue(e.getMessage().contains("conv1/relu_out") && e.getMessage().contains("NaN")
                && e.getMessage().contains("index 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MinMaxStats.of("fc", new float[] {Float.NEGATIVE_INFINITY}));
        assertTrue(e.getMessage().contains("fc") && e.getMessage().contains("Infinity"), e.getMessage());
    }

    @Test
    void inconsistentFieldsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new MinMaxStats(-1, 0, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new MinMaxStats(2, 3, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new MinMaxStats(2, Double.NaN, 1, 0, 0));
    }
}
