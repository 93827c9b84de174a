package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class HistogramTest {

    @Test
    void binsOfAnAsymmetricSpecByHand() {
        HistogramSpec s = new HistogramSpec(-1, 3, 8); // w = 0.5, edges −1, −0.5, 0, ..., 3
        assertEquals(0.5, s.binWidth());
        assertEquals(0.5, s.edge(3));
        assertEquals(3.0, s.edge(8));
        assertEquals(-0.75, s.center(0));
        assertEquals(0, s.binOf(-1));
        assertEquals(1, s.binOf(-0.5));
        assertEquals(2, s.binOf(0.49));
        assertEquals(7, s.binOf(2.99));
        assertEquals(7, s.binOf(3), "hi belongs to the last bin");
        assertEquals(0, s.binOf(-5), "below lo: first bin");
        assertEquals(7, s.binOf(100), "above hi: last bin");
        Histogram h = Histogram.empty(s).add(new float[] {-1, -0.5f, 0.49f, 2.99f, 3, -5, 100});
        assertArrayEquals(new long[] {2, 1, 1, 0, 0, 0, 0, 3}, h.counts());
        assertEquals(7, h.total());
    }

    @Test
    void symmetricSpecBinsByMagnitudeSoThatMinusXMirrorsX() {
        HistogramSpec s = new HistogramSpec(-2, 2, 8); // w = 0.5
        assertTrue(s.isSymmetric());
        assertEquals(4, s.binOf(0));
        assertEquals(4, s.binOf(-0.0));
        assertEquals(3, s.binOf(-0.1));
        assertEquals(5, s.binOf(0.5));
        assertEquals(2, s.binOf(-0.5), "a negative value on an edge goes to the bin further from 0, as its mirror");
        assertEquals(7, s.binOf(2));
        assertEquals(0, s.binOf(-2));
        assertEquals(0, s.binOf(-7));
        Random r = new Random(5);
        for (int i = 0; i < 100_000; i++) {
            // values on and near edges included: k/4 of the width
            double x = r.nextBoolean() ? r.nextInt(1, 33) / 8.0 : r.nextDouble() * 2.5;
            if (x == 0) continue; // ±0 both count as |x| = 0, in bin 4
            assertEquals(7 - s.binOf(x), s.binOf(-x), "x = " + x);
        }
    }

    @Test
    void foldingASymmetricHistogramIsTheHistogramOfAbsoluteValues() {
        float[] x = Samples.laplace(50_000, 1, 8);
        MinMaxStats m = MinMaxStats.of(x);
        HistogramSpec s = HistogramSpec.symmetric(m, 1000);
        Histogram folded = Histogram.empty(s).add(x).foldAbs();
        float[] abs = new float[x.length];
        for (int i = 0; i < x.length; i++) abs[i] = Math.abs(x[i]);
        Histogram direct = Histogram.empty(new HistogramSpec(0, m.absMax(), 500)).add(abs);
        assertEquals(direct, folded);
    }

    @Test
    void foldingOneSidedSpecs() {
        HistogramSpec negative = new HistogramSpec(-4, 0, 4);
        Histogram h = Histogram.empty(negative).add(new float[] {-3.5f, -0.5f, -0.2f, 0f});
        assertArrayEquals(new long[] {1, 0, 0, 3}, h.counts());
        Histogram folded = h.foldAbs();
        assertEquals(new HistogramSpec(0, 4, 4), folded.spec());
        assertArrayEquals(new long[] {3, 0, 0, 1}, folded.counts());
        Histogram positive = Histogram.empty(new HistogramSpec(0, 4, 4)).add(new float[] {1, 2});
        assertEquals(positive, positive.foldAbs());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Histogram.empty(new HistogramSpec(-1, 3, 8)).foldAbs());
        assertTrue(e.getMessage().contains("HistogramSpec.symmetric"), e.getMessage());
    }

    @Test
    void mergedPartsEqualTheWholeInAnyOrder() {
        float[] x = Samples.gaussian(30_000, 4);
        HistogramSpec s = HistogramSpec.symmetric(MinMaxStats.of(x), 256);
        Histogram whole = Histogram.empty(s).add(x);
        List<Histogram> parts = new ArrayList<>();
        int[] cuts = {0, 1, 999, 12_345, 12_345, 29_000, 30_000};
        for (int k = 0; k + 1 < cuts.length; k++) parts.add(Histogram.empty(s).add(Arrays.copyOfRange(x, cuts[k], cuts[k + 1])));
        Random r = new Random(6);
        for (int trial = 0; trial < 20; trial++) {
            Collections.shuffle(parts, r);
            Histogram merged = Histogram.empty(s);
            for (Histogram p : parts) merged = r.nextBoolean() ? merged.merge(p) : p.merge(merged);
            assertEquals(whole, merged);
        }
        // a tree of merges, too
        Histogram left = parts.get(0).merge(parts.get(1)).merge(parts.get(2));
        Histogram right = parts.get(3).merge(parts.get(4).merge(parts.get(5)));
        assertEquals(whole, right.merge(left));
        assertEquals(30_000, whole.total());
    }

    @Test
    void mismatchedSpecsDoNotMerge() {
        Histogram a = Histogram.empty(new HistogramSpec(-1, 1, 16));
        for (HistogramSpec other : new HistogramSpec[] {new HistogramSpec(-1, 1, 32), new HistogramSpec(-1, 1.5, 16),
                new HistogramSpec(-0.5, 1, 16)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.merge(Histogram.empty(other)));
            assertTrue(e.getMessage().contains("different bins"), e.getMessage());
        }
    }

    @Test
    void quantileInterpolatesWithinABin() {
        long[] c = new long[10];
        c[0] = 10;
        c[5] = 30;
        Histogram h = new Histogram(new HistogramSpec(0, 10, 10), c);
        assertEquals(0.0, h.quantile(0));
        assertEquals(1.0, h.quantile(0.25), 1e-12);      // all 10 of bin [0, 1)
        assertEquals(5 + 1 / 3.0, h.quantile(0.5), 1e-12); // 10 of the 30 in [5, 6)
        assertEquals(6.0, h.quantile(1), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> h.quantile(1.5));
        assertThrows(IllegalArgumentException.class, () -> Histogram.empty(h.spec()).quantile(0.5));
    }

    @Test
    void specsFromTheMinMaxPass() {
        MinMaxStats m = MinMaxStats.of(new float[] {-1, 3});
        assertEquals(new HistogramSpec(-3, 3, 2 * HistogramSpec.DEFAULT_BINS), HistogramSpec.symmetric(m));
        assertEquals(new HistogramSpec(-1, 3, HistogramSpec.DEFAULT_BINS), HistogramSpec.range(m));
        assertEquals(2048, HistogramSpec.DEFAULT_BINS);
        // one-signed tensors: the range spec reaches 0, so it folds exactly
        assertEquals(new HistogramSpec(0, 5, 64), HistogramSpec.range(MinMaxStats.of(new float[] {2, 5}), 64));
        assertEquals(new HistogramSpec(-5, 0, 64), HistogramSpec.range(MinMaxStats.of(new float[] {-5, -2}), 64));
        // degenerate ranges still give valid specs
        MinMaxStats constant = MinMaxStats.of(new float[] {2.5f, 2.5f});
        assertEquals(new HistogramSpec(0, 2.5, 64), HistogramSpec.range(constant, 64));
        assertEquals(new HistogramSpec(-2.5, 2.5, 64), HistogramSpec.symmetric(constant, 64));
        MinMaxStats zeros = MinMaxStats.of(new float[] {0, 0, -0f});
        assertEquals(new HistogramSpec(-1, 1, 64), HistogramSpec.range(zeros, 64));
        assertEquals(new HistogramSpec(-1, 1, 64), HistogramSpec.symmetric(zeros, 64));
        assertEquals(3, Histogram.empty(HistogramSpec.symmetric(zeros, 64)).add(new float[] {0, 0, -0f}).foldAbs().count(0));

        assertThrows(IllegalArgumentException.class, () -> HistogramSpec.symmetric(m, 63));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HistogramSpec.range(MinMaxStats.empty()));
        assertTrue(e.getMessage().contains("no values"), e.getMessage());
    }

    @Test
    void badSpecsAndCountsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new HistogramSpec(1, 1, 10));
        assertThrows(IllegalArgumentException.class, () -> new HistogramSpec(0, Double.NaN, 10));
        assertThrows(IllegalArgumentException.class, () -> new HistogramSpec(0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Histogram(new HistogramSpec(0, 1, 3), new long[2]));
        assertThrows(IllegalArgumentException.class, () -> new Histogram(new HistogramSpec(0, 1, 2), new long[] {1, -1}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Histogram.empty(new HistogramSpec(0, 1, 2)).add("layer3.in", new float[] {0.5f, Float.NaN}));
        assertTrue(e.getMessage().contains("layer3.in"), e.getMessage());
    }

    @Test
    void immutable() {
        long[] c = {1, 2};
        Histogram h = new Histogram(new HistogramSpec(0, 1, 2), c);
        c[0] = 100;
        h.counts()[1] = 100;
        assertArrayEquals(new long[] {1, 2}, h.counts());
        Histogram added = h.add(new float[] {0.1f});
        assertArrayEquals(new long[] {1, 2}, h.counts());
        assertNotEquals(h, added);
    }
}
