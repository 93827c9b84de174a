package io.quantcal.kernels.stats;

import static java.lang.Math.log;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EntropyCalibratorTest {

    /** |x| counts of six bins, quantized to 2 levels (the 2-bit signed grid): candidates i = 2..6. */
    private static final double[] TINY = {4, 6, 8, 0, 7, 3};

    /**
     * Worked by hand, total 28. i = 2: P = [4, 6+18]/28, Q = [4, 6]/10 (one bin per level).
     * i = 3: P = [4, 6, 8+10]/28; levels ⌊2j/3⌋ = 0, 0, 1: Q = [5, 5, 8]/18.
     * i = 4: P's last bin 0 + 10 outliers > 0 where Q is 0 (empty bin): ∞.
     * i = 5: P = [4, 6, 8, 0, 7+3]/28; levels ⌊2j/5⌋ = 0, 0, 0, 1, 1: Q = [6, 6, 6, 0, 7]/25.
     * i = 6: P = [4, 6, 8, 0, 7, 3]/28; levels ⌊j/3⌋: Q = [6, 6, 6, 0, 5, 5]/28.
     */
    @Test
    void divergencesOfATinyHistogramByHand() {
        double[] expected = {
            1 / 7.0 * log(5 / 14.0) + 6 / 7.0 * log(10 / 7.0),
            1 / 7.0 * log(18 / 35.0) + 3 / 14.0 * log(27 / 35.0) + 9 / 14.0 * log(81 / 56.0),
            Double.POSITIVE_INFINITY,
            1 / 7.0 * log(25 / 42.0) + 3 / 14.0 * log(25 / 28.0) + 2 / 7.0 * log(25 / 21.0) + 5 / 14.0 * log(125 / 98.0),
            1 / 7.0 * log(2 / 3.0) + 2 / 7.0 * log(4 / 3.0) + 1 / 4.0 * log(7 / 5.0) + 3 / 28.0 * log(3 / 5.0),
        };
        assertArrayEquals(expected, EntropyCalibrator.divergences(TINY, 2), 1e-12);
        // 0.1586, 0.0867, ∞, 0.0383, 0.0537: the minimum is i = 5
        assertEquals(5, EntropyCalibrator.bestBinCount(TINY, 2));
    }

    @Test
    void theTinyHistogramThroughTheCalibrator() {
        // |x| bins of width 1 over [0, 6] hold 4, 6, 8, 0, 7, 3 values; the signs split so that min = −1.5
        float[] x = io.quantcal.kernels.onnx.TestModels.concat(fill(2, -0.5f), fill(2, 0.5f), fill(6, -1.5f), fill(8, 2.5f), fill(7, 4.5f), fill(3, 5.5f));
        MinMaxStats m = MinMaxStats.of(x);
        assertEquals(-1.5, m.min());
        assertEquals(5.5, m.max());
        TensorStats s = TensorStats.of("t", x, HistogramSpec.symmetric(m, 12)); // [−5.5, 5.5]: w = 11/12
        QuantGrid twoBit = SymmetricQuantizer.grid(2, true);
        assertEquals(2, EntropyCalibrator.levels(twoBit));
        // w = 5.5/6 ≠ 1, but the counts per |x| bin are the same six; T = 5 bin widths
        assertArrayEquals(new long[] {4, 6, 8, 0, 7, 3}, s.histogram().foldAbs().counts());
        double t = 5 * 5.5 / 6;
        assertEquals(-t, new EntropyCalibrator(false).calibrate(s, twoBit, true).min(), 1e-12);
        assertEquals(t, new EntropyCalibrator(false).calibrate(s, twoBit, true).max(), 1e-12);
        // affine: clipped at T only on the side the data reach past it
        Range affine = new EntropyCalibrator(false).calibrate(s, QuantGrid.of(2, true), false);
        assertEquals(-1.5, affine.min());
        assertEquals(t, affine.max(), 1e-12);
    }

    @Test
    void agreesWithTheNumpyReferenceImplementation() throws IOException {
        for (String file : new String[] {"entropy-gaussian-int8.txt", "entropy-laplace-pow-int4.txt", "entropy-relu-uint8.txt"}) {
            Map<String, String> ref = read("/stats/" + file);
            double[] counts = Arrays.stream(ref.get("counts").split(" ")).mapToDouble(Double::parseDouble).toArray();
            // Python writes ∞ as inf
            double[] kl = Arrays.stream(ref.get("kl").split(" ")).mapToDouble(v -> v.equals("inf")
                    ? Double.POSITIVE_INFINITY : Double.parseDouble(v)).toArray();
            int levels = Integer.parseInt(ref.get("levels"));
            double[] ours = EntropyCalibrator.divergences(counts, levels);
            assertEquals(kl.length, ours.length, file);
            for (int k = 0; k < kl.length; k++) {
                if (Double.isInfinite(kl[k])) assertEquals(kl[k], ours[k], file + " candidate " + (levels + k));
                else assertEquals(kl[k], ours[k], 1e-9 * Math.max(1e-3, kl[k]), file + " candidate " + (levels + k));
            }
            int best = Integer.parseInt(ref.get("best"));
            assertEquals(best, EntropyCalibrator.bestBinCount(counts, levels), file);

            // through the calibrator: a |x| histogram with unit bins, so T = the number of bins kept
            long[] c = new long[counts.length];
            long total = 0;
            for (int i = 0; i < c.length; i++) total += c[i] = (long) counts[i];
            TensorStats s = new TensorStats("t", new MinMaxStats(total, 0, c.length, 0, 0),
                    new Histogram(new HistogramSpec(0, c.length, c.length), c));
            QuantGrid grid = levels == 256 ? QuantGrid.of(8, false) : SymmetricQuantizer.grid(levels == 128 ? 8 : 4, true);
            assertEquals(levels, EntropyCalibrator.levels(grid));
            assertEquals(best, new EntropyCalibrator(false).calibrate(s, grid, true).max(), 1e-9, file);
            int flattened = Integer.parseInt(ref.get("best_zero_bin_flattened"));
            assertEquals(flattened, new EntropyCalibrator(true).calibrate(s, grid, true).max(), 1e-9, file);
        }
    }

    @Test
    void gaussianThresholdIsWellInsideTheMaximum() {
        float[] x = Samples.gaussian(1_000_000, 2024);
        MinMaxStats m = MinMaxStats.of(x);
        TensorStats s = TensorStats.of("t", x, new EntropyCalibrator().histogramSpec(m, true).orElseThrow());
        assertEquals(2048, s.histogram().foldAbs().spec().bins());
        for (boolean flatten : new boolean[] {true, false}) {
            double t = new EntropyCalibrator(flatten).calibrate(s, SymmetricQuantizer.grid(8, true), true).max();
            // the numpy reference gives 1792/2048 of a max of about 4.9 (entropy-gaussian-int8.txt): ≈ 4.3σ
            assertTrue(t > 3.8 && t < 4.7, "threshold " + t + " (max " + m.absMax() + ")");
            assertTrue(t < m.absMax() - 0.3, "threshold " + t + " should clip the tail below the max " + m.absMax());
        }
    }

    @Test
    void reluOutputsKeepAUsefulThresholdOnlyWithTheZeroBinFlattened() {
        float[] x = Samples.gaussian(1_000_000, 77);
        for (int i = 0; i < x.length; i++) x[i] = Math.max(0, x[i]);
        MinMaxStats m = MinMaxStats.of(x);
        TensorStats s = TensorStats.of("relu", x, HistogramSpec.symmetric(m));
        QuantGrid grid = SymmetricQuantizer.grid(8, true);
        double flattened = new EntropyCalibrator(true).calibrate(s, grid, true).max();
        double published = new EntropyCalibrator(false).calibrate(s, grid, true).max();
        // numpy reference on a ReLU'd N(0,1) sample: 4.48 with bins[0] = bins[1], 1.89 without
        assertTrue(flattened > 4 && flattened < 4.8, "flattened: " + flattened);
        assertTrue(published > 1.5 && published < 2.3, "as published: " + published);
    }

    @Test
    void withAsManyLevelsAsBinsTheThresholdIsTheMaximum() {
        float[] x = Samples.gaussian(100_000, 5);
        MinMaxStats m = MinMaxStats.of(x);
        TensorStats s = TensorStats.of("t", x, HistogramSpec.symmetric(m));
        // 16-bit signed: 32768 levels; 12-bit unsigned: 4096 levels; both >= 2048 |x| bins
        assertEquals(Range.symmetric(m.absMax()), new EntropyCalibrator().calibrate(s, SymmetricQuantizer.grid(16, true), true));
        assertEquals(new Range(m.min(), m.max()), new EntropyCalibrator().calibrate(s, QuantGrid.of(12, false), false));
        // 11-bit signed: 1024 levels < 2048 bins, so a search happens and clips
        assertTrue(new EntropyCalibrator().calibrate(s, SymmetricQuantizer.grid(11, true), true).max() <= m.absMax());
    }

    @Test
    void allZeroTensor() {
        float[] x = new float[100];
        TensorStats s = TensorStats.of("zeros", x, new EntropyCalibrator().histogramSpec(MinMaxStats.of(x), true).orElseThrow());
        assertEquals(new Range(0, 0), new EntropyCalibrator().calibrate(s, SymmetricQuantizer.grid(8, true), true));
        assertEquals(new Range(0, 0), new EntropyCalibrator(false).calibrate(s, SymmetricQuantizer.grid(8, true), true));
    }

    private static Map<String, String> read(String resource) throws IOException {
        Map<String, String> m = new HashMap<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(
                EntropyCalibratorTest.class.getResourceAsStream(resource), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith("#") || line.isBlank()) continue;
                int sp = line.indexOf(' ');
                m.put(line.substring(0, sp), line.substring(sp + 1).trim());
            }
        }
        return m;
    }

    private static float[] fill(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }
}
