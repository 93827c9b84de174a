package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ExponentHistogramTest {

    private static final int OCTAVE = 1 << ExponentHistogram.SUB_BITS; // bins per power of two: 1024

    @Test
    void binsOfGivenFloatsByHand() {
        assertEquals(10, ExponentHistogram.SUB_BITS);
        // 1.0f = 0x3F800000: |bits| / 2^13 = 127·1024 exactly, so 1 is the top of bin 130048 = (1 − 2^−11, 1]
        assertEquals(127 * OCTAVE, ExponentHistogram.bin(1.0f));
        assertEquals(1.0, ExponentHistogram.edge(127 * OCTAVE));
        assertEquals(1 - 0x1p-11, ExponentHistogram.lower(127 * OCTAVE));
        // (1, 1 + 2^−10] is the next bin: 1 + 2^−11 and 1 + 2^−10 are in it, 1 + 2^−10 + 2^−23 is not
        assertEquals(127 * OCTAVE + 1, ExponentHistogram.bin(1.0f + 0x1p-11f));
        assertEquals(127 * OCTAVE + 1, ExponentHistogram.bin(1.0f + 0x1p-10f));
        assertEquals(127 * OCTAVE + 2, ExponentHistogram.bin(Math.nextUp(1.0f + 0x1p-10f)));
        assertEquals(1 + 0x1p-10, ExponentHistogram.upper(127 * OCTAVE + 1));
        // 1.5 = 1.1b: half way through the octave; −1.5 in the mirror bin
        assertEquals(127 * OCTAVE + 512, ExponentHistogram.bin(1.5f));
        assertEquals(-(127 * OCTAVE + 512), ExponentHistogram.bin(-1.5f));
        assertEquals(-1.5, ExponentHistogram.lower(-(127 * OCTAVE + 512)));
        assertEquals(-(1.5 - 0x1p-10), ExponentHistogram.upper(-(127 * OCTAVE + 512)));
        // 3 = 1.1b · 2^1
        assertEquals(128 * OCTAVE + 512, ExponentHistogram.bin(3f));
        // 0.1f = 0x3DCCCCCD = 1036831949 = 126566 · 2^13 + 3277: bin 126567 = 123·1024 + 615
        assertEquals(1036831949, Float.floatToRawIntBits(0.1f));
        assertEquals(123 * OCTAVE + 615, ExponentHistogram.bin(0.1f));
        assertTrue(ExponentHistogram.lower(123 * OCTAVE + 615) < 0.1f && 0.1f <= ExponentHistogram.upper(123 * OCTAVE + 615));
        // zeros alone in bin 0; subnormals: the smallest in bin 1, 1e-40f (bits 71362 = 8 · 2^13 + 5826) in bin 9;
        // the smallest normal float tops bin 1024
        assertEquals(0, ExponentHistogram.bin(0f));
        assertEquals(0, ExponentHistogram.bin(-0f));
        assertEquals(1, ExponentHistogram.bin(Float.MIN_VALUE));
        assertEquals(-1, ExponentHistogram.bin(-Float.MIN_VALUE));
        assertEquals(71362, Float.floatToRawIntBits(1e-40f));
        assertEquals(9, ExponentHistogram.bin(1e-40f));
        assertEquals(OCTAVE, ExponentHistogram.bin(Float.MIN_NORMAL));
        assertEquals(255 * OCTAVE, ExponentHistogram.bin(Float.MAX_VALUE));
        assertEquals(Double.POSITIVE_INFINITY, ExponentHistogram.edge(255 * OCTAVE));
        assertEquals(Double.POSITIVE_INFINITY, ExponentHistogram.edge(ExponentHistogram.KEYS));
    }

    @Test
    void countsZerosMinAndMaxByHand() {
        float[] x = {0f, -0f, 1f, 1f + 0x1p-10f, -1.5f, 3f, 3f, 1e-40f};
        ExponentHistogram h = ExponentHistogram.of("act", x);
        assertEquals(8, h.count());
        assertEquals(2, h.zeros(), "+0 and −0, in bin 0 alone");
        assertEquals(2, h.count(0));
        assertEquals(-1.5f, h.min());
        assertEquals(3f, h.max());
        assertEquals(1, h.count(127 * OCTAVE));
        assertEquals(1, h.count(127 * OCTAVE + 1));
        assertEquals(1, h.count(-(127 * OCTAVE + 512)));
        assertEquals(0, h.count(127 * OCTAVE + 512), "−1.5 is not counted with the positive values");
        assertEquals(2, h.count(128 * OCTAVE + 512));
        assertEquals(1, h.count(9));
        assertEquals(0, h.count(1));
        MinMaxStats m = h.minMax();
        assertEquals(8, m.count());
        assertEquals(-1.5, m.min());
        assertEquals(3.0, m.max());
    }

    @Test
    void minAndMaxAreExactAndMinusZeroCountsAsZero() {
        Random r = new Random(3);
        for (int trial = 0; trial < 50; trial++) {
            float[] x = new float[1 + r.nextInt(5000)];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 4));
            ExponentHistogram h = ExponentHistogram.of("t", x);
            MinMaxStats m = MinMaxStats.of("t", x);
            assertEquals(m.min(), h.min());
            assertEquals(m.max(), h.max());
            assertEquals(x.length, h.count());
        }
        ExponentHistogram z = ExponentHistogram.of("t", new float[] {-0f, -0f});
        assertEquals(0, Float.floatToRawIntBits(z.min()), "−0 is taken as +0");
        assertEquals(0, Float.floatToRawIntBits(z.max()));
        assertEquals(2, z.zeros());
        ExponentHistogram neg = ExponentHistogram.of("t", new float[] {-2f, -0.5f});
        assertEquals(-2f, neg.min());
        assertEquals(-0.5f, neg.max());
    }

    @Test
    void mergeIsAdditionWhateverThePartsAndTheirOrder() throws Exception {
        Random r = new Random(11);
        float[] x = new float[60_000];
        for (int i = 0; i < x.length; i++) {
            x[i] = switch (i % 4) {
                case 0 -> 0f;
                case 1 -> (float) Math.max(0, r.nextGaussian());
                case 2 -> (float) (-3 * Math.log(1 - r.nextDouble()));
                default -> (float) (r.nextGaussian() * 1e-3);
            };
        }
        ExponentHistogram whole = ExponentHistogram.of("t", x);
        for (int trial = 0; trial < 10; trial++) {
            int parts = 1 + r.nextInt(7);
            int[] cuts = new int[parts + 1];
            cuts[parts] = x.length;
            for (int p = 1; p < parts; p++) cuts[p] = r.nextInt(x.length + 1);
            Arrays.sort(cuts);
            List<ExponentHistogram> partial = new ArrayList<>();
            for (int p = 0; p < parts; p++) {
                // a part added in batches to one accumulator, as a task does
                ExponentHistogram.Accumulator acc = new ExponentHistogram.Accumulator();
                for (int from = cuts[p]; from < cuts[p + 1]; from += 1000) {
                    acc.add("t", Arrays.copyOfRange(x, from, Math.min(cuts[p + 1], from + 1000)));
                }
                partial.add(Samples.roundTrip(acc.finish()));
            }
            Collections.shuffle(partial, r);
            ExponentHistogram merged = ExponentHistogram.empty();
            for (ExponentHistogram h : partial) merged = merged.merge(h);
            assertEquals(whole, merged, "parts " + Arrays.toString(cuts));
        }
        // merge is the sum of the counts, bin by bin
        ExponentHistogram a = ExponentHistogram.of("t", new float[] {1f, 1f, -2f, 0f});
        ExponentHistogram b = ExponentHistogram.of("t", new float[] {1f, 5f, 0f, 0f});
        ExponentHistogram ab = a.merge(b);
        assertEquals(8, ab.count());
        assertEquals(3, ab.zeros());
        assertEquals(3, ab.count(ExponentHistogram.bin(1f)));
        assertEquals(1, ab.count(ExponentHistogram.bin(-2f)));
        assertEquals(1, ab.count(ExponentHistogram.bin(5f)));
        assertEquals(-2f, ab.min());
        assertEquals(5f, ab.max());
        assertEquals(ab, b.merge(a));
    }

    @Test
    void nanAndInfinityAreRefusedNamingTheTensorAndTheAccumulatorKeepsNoneOfTheBatch() {
        ExponentHistogram.Accumulator acc = new ExponentHistogram.Accumulator();
        acc.add("conv1.out", new float[] {1f, 2f});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> acc.add("conv1.out", new float[] {0.5f, -7f, 3f, Float.NaN, 4f}));
        assertEquals("tensor conv1.out: value NaN at index 3 is not finite; calibration statistics need finite values",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> acc.add("conv1.out", new float[] {Float.NEGATIVE_INFINITY}));
        assertTrue(e.getMessage().startsWith("tensor conv1.out: value -Infinity at index 0 is not finite"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExponentHistogram.of("x", new float[] {Float.POSITIVE_INFINITY, 0}));
        assertTrue(e.getMessage().startsWith("tensor x: value Infinity at index 0"), e.getMessage());
        // a NaN with the sign bit set sorts below −∞
        float negNaN = Float.intBitsToFloat(0xFFC00000);
        e = assertThrows(IllegalArgumentException.class, () -> ExponentHistogram.of("y", new float[] {1, negNaN}));
        assertTrue(e.getMessage().startsWith("tensor y: value NaN at index 1"), e.getMessage());
        assertEquals(ExponentHistogram.of("conv1.out", new float[] {1f, 2f}), acc.finish());
    }

    @Test
    void valuesReadInPlaceFromADirectBufferCountAsTheArrayDoes() {
        Random r = new Random(8);
        float[] x = new float[10_000]; // more than one 4096-value chunk
        for (int i = 0; i < x.length; i++) x[i] = i % 5 == 0 ? (i % 2 == 0 ? 0f : -0f) : (float) (r.nextGaussian() * 3);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(4 * x.length).order(java.nio.ByteOrder.nativeOrder());
        b.asFloatBuffer().put(x);
        ExponentHistogram.Accumulator acc = new ExponentHistogram.Accumulator();
        acc.add("t", b);
        assertEquals(0, b.position(), "the buffer is read in place");
        assertEquals(ExponentHistogram.of("t", x), acc.finish());
        // a NaN in the third chunk: the error names the tensor and the index, and the whole batch is taken out again
        x[9000] = Float.NaN;
        b.asFloatBuffer().put(x);
        ExponentHistogram.Accumulator bad = new ExponentHistogram.Accumulator();
        bad.add("t", new float[] {1f, -4f});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bad.add("layer2", b));
        assertEquals("tensor layer2: value NaN at index 9000 is not finite; calibration statistics need finite values", e.getMessage());
        assertEquals(ExponentHistogram.of("t", new float[] {1f, -4f}), bad.finish());
    }

    @Test
    void everyValueIsCountedInTheBinItsBitsGiveWhateverTheChunkAndThePath() {
        // random finite bit patterns of both signs (subnormals, the largest floats, both zeros) and runs of zeros, in
        // lengths around the 4096-value chunk: the accumulator's slots and its spread zeros against bin(x) one by one
        Random r = new Random(5);
        for (int n : new int[] {1, 17, 4095, 4096, 4097, 12_289}) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = switch (r.nextInt(6)) {
                    case 0 -> 0f;
                    case 1 -> -0f;
                    case 2 -> Float.intBitsToFloat(r.nextInt() & 0x807FFFFF); // subnormal or zero
                    case 3 -> r.nextBoolean() ? Float.MAX_VALUE : -Float.MAX_VALUE;
                    default -> {
                        float v;
                        do v = Float.intBitsToFloat(r.nextInt()); while (!Float.isFinite(v));
                        yield v;
                    }
                };
            }
            java.util.TreeMap<Integer, Long> want = new java.util.TreeMap<>();
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (float v : x) {
                want.merge(ExponentHistogram.bin(v), 1L, Long::sum);
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(4 * n + 8).order(java.nio.ByteOrder.nativeOrder());
            b.putFloat(0, 1f).putFloat(4, 1f);
            for (int i = 0; i < n; i++) b.putFloat(8 + 4 * i, x[i]);
            ExponentHistogram.Accumulator fromBuffer = new ExponentHistogram.Accumulator();
            fromBuffer.add("t", b.position(8)); // from the buffer's position on
            assertEquals(8, b.position());
            for (ExponentHistogram h : List.of(ExponentHistogram.of("t", x), fromBuffer.finish())) {
                assertEquals(n, h.count());
                assertEquals(min + 0f, h.min());
                assertEquals(max + 0f, h.max());
                assertEquals(want.getOrDefault(0, 0L), h.zeros());
                long total = 0;
                for (var e : want.entrySet()) {
                    assertEquals(e.getValue(), h.count(e.getKey()), "n " + n + ", bin " + e.getKey());
                    total += e.getValue();
                }
                assertEquals(n, total);
                assertEquals(0, h.count(want.firstKey() - 1));
                assertEquals(0, h.count(want.lastKey() + 1));
            }
        }
    }

    @Test
    void rebinningIsExactWhenEveryBinLiesInsideARegularBin() {
        // regular bins of width 1 over [−4, 4]; each value's exponent bin (width ≤ 2^−9 here) lies inside one of them
        float[] x = {-2.5f, 0f, 0f, 0.5f, 1.25f, 3.75f};
        Histogram h = ExponentHistogram.of("t", x).toHistogram(new HistogramSpec(-4, 4, 8));
        assertArrayEquals(new long[] {0, 1, 0, 0, 3, 1, 0, 1}, h.counts());
        assertEquals(Histogram.empty(h.spec()).add(x), h);
    }

    @Test
    void aBinAcrossARegularEdgeIsSplitInProportionByHand() {
        // four values in the exponent bin (1, 1 + 2^−10]; the regular edge 1 + 2^−11 halves it, so 2 of them are
        // counted below it and 2 above (the exact counts would be 0 and 4); 0.25 and 2 lie wholly on either side
        float v = 1f + 0x1p-10f;
        float[] x = {0.25f, v, v, v, v, 2f};
        HistogramSpec spec = new HistogramSpec(0, 2 + 0x1p-10, 2);
        assertEquals(1 + 0x1p-11, spec.edge(1));
        assertArrayEquals(new long[] {3, 3}, ExponentHistogram.of("t", x).toHistogram(spec).counts());
        // the bin holding the min is taken only from the min up: [1 + 2^−10, 1 + 2^−10], wholly above the edge
        float[] y = {v, v, v, v, 2f};
        assertArrayEquals(new long[] {0, 5}, ExponentHistogram.of("t", y).toHistogram(spec).counts());
    }

    @Test
    void rebinnedCumulativeCountsDifferFromExactOnesByAtMostTheBinAcrossTheEdge() {
        float[] x = Samples.laplace(100_000, 0.8, 21);
        ExponentHistogram e = ExponentHistogram.of("t", x);
        for (HistogramSpec spec : List.of(HistogramSpec.symmetric(e.minMax()), HistogramSpec.range(e.minMax(), 300))) {
            long[] got = e.toHistogram(spec).counts(), exact = Histogram.empty(spec).add(x).counts();
            assertEquals(Arrays.stream(exact).sum(), Arrays.stream(got).sum());
            long cg = 0, ce = 0;
            for (int j = 0; j < spec.bins() - 1; j++) {
                cg += got[j];
                ce += exact[j];
                long across = e.count(ExponentHistogram.bin((float) spec.edge(j + 1)));
                assertTrue(Math.abs(cg - ce) <= across, "edge " + j + ": " + cg + " vs " + ce + ", bin across it " + across);
            }
        }
    }

    @Test
    void emptyHistograms() {
        ExponentHistogram none = new ExponentHistogram.Accumulator().finish();
        assertTrue(none.isEmpty());
        assertTrue(none.minMax().isEmpty());
        ExponentHistogram one = ExponentHistogram.of("t", new float[] {2f});
        assertEquals(one, none.merge(one));
        assertEquals(one, one.merge(none));
        assertArrayEquals(new long[] {0, 0}, none.toHistogram(new HistogramSpec(0, 1, 2)).counts());
        assertEquals(0, none.zeros());
    }
}
