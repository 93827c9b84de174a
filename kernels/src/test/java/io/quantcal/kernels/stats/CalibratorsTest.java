package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The factory, minmax and percentile. */
class CalibratorsTest {

    private static final QuantGrid INT8 = SymmetricQuantizer.grid(8, true);
    private static final QuantGrid UINT8 = QuantGrid.of(8, false);

    @Test
    void byNameKnowsTheFourCalibrators() {
        assertInstanceOf(MinMaxCalibrator.class, Calibrators.byName("minmax", 99.99));
        assertEquals(new PercentileCalibrator(99.99), Calibrators.byName("percentile", 99.99));
        assertEquals(new EntropyCalibrator(true), Calibrators.byName("entropy", 99.99));
        assertEquals(new MseCalibrator(MseCalibrator.DEFAULT_CANDIDATES), Calibrators.byName("mse", 99.99));
        assertEquals(new EntropyCalibrator(), Calibrators.byName(" Entropy ", 0));
        for (String name : Calibrators.NAMES) assertEquals(name, Calibrators.byName(name, 99).name());
    }

    @Test
    void unknownNameListsTheValidOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Calibrators.byName("kl", 99));
        assertTrue(e.getMessage().contains("'kl'") && e.getMessage().contains("minmax, percentile, entropy, mse"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Calibrators.byName(null, 99));
        e = assertThrows(IllegalArgumentException.class, () -> Calibrators.byName("percentile", 101));
        assertTrue(e.getMessage().contains("101"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Calibrators.byName("percentile", 20));
        assertThrows(IllegalArgumentException.class, () -> Calibrators.byName("percentile", Double.NaN));
    }

    @Test
    void histogramSpecsEachCalibratorAsksFor() {
        MinMaxStats m = MinMaxStats.of(new float[] {-1, 4});
        assertEquals(Optional.empty(), new MinMaxCalibrator().histogramSpec(m, true));
        assertEquals(Optional.of(HistogramSpec.symmetric(m)), new PercentileCalibrator(99).histogramSpec(m, true));
        assertEquals(Optional.of(HistogramSpec.range(m)), new PercentileCalibrator(99).histogramSpec(m, false));
        assertEquals(Optional.of(HistogramSpec.symmetric(m)), new EntropyCalibrator().histogramSpec(m, false));
        assertEquals(Optional.of(HistogramSpec.range(m)), new MseCalibrator().histogramSpec(m, false));
    }

    @Test
    void minmaxIsTheObservedRange() {
        TensorStats s = TensorStats.of("t", new float[] {-2, 0.5f, 7});
        assertEquals(new Range(-2, 7), new MinMaxCalibrator().calibrate(s, INT8, true));
        assertEquals(new Range(-2, 7), new MinMaxCalibrator().calibrate(s, UINT8, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MinMaxCalibrator().calibrate(new TensorStats("empty.t", MinMaxStats.empty(), null), INT8, true));
        assertTrue(e.getMessage().contains("empty.t"), e.getMessage());
    }

    @Test
    void percentileOfOneToTenThousand() {
        float[] x = new float[10_000];
        for (int i = 0; i < x.length; i++) x[i] = i + 1;
        MinMaxStats m = MinMaxStats.of(x);
        PercentileCalibrator p99 = new PercentileCalibrator(99);

        // affine: bins over [0, 10000], w ≈ 4.88; 1st and 99th percentiles 100 and 9900
        TensorStats affine = TensorStats.of("t", x, p99.histogramSpec(m, false).orElseThrow());
        double w = affine.histogram().spec().binWidth();
        Range r = p99.calibrate(affine, UINT8, false);
        assertEquals(100, r.min(), w);
        assertEquals(9900, r.max(), w);

        // symmetric: |x| = x here; bins over [−10000, 10000], the same width after folding
        TensorStats symmetric = TensorStats.of("t", x, p99.histogramSpec(m, true).orElseThrow());
        Range s = p99.calibrate(symmetric, INT8, true);
        assertEquals(9900, s.max(), symmetric.histogram().spec().binWidth());
        assertEquals(-s.max(), s.min());
    }

    @Test
    void percentileOfMagnitudesOfASymmetricTensor() {
        // −5000..5000: |x| is uniform on [0, 5000], its 99th percentile 4950, and its 99.9th 4995
        float[] x = new float[10_001];
        for (int i = 0; i < x.length; i++) x[i] = i - 5000;
        TensorStats s = TensorStats.of("t", x, HistogramSpec.symmetric(MinMaxStats.of(x)));
        double w = s.histogram().spec().binWidth();
        assertEquals(4950, new PercentileCalibrator(99).calibrate(s, INT8, true).max(), w);
        assertEquals(4995, new PercentileCalibrator(99.9).calibrate(s, INT8, true).max(), w);
        Range affine = new PercentileCalibrator(99).calibrate(s, QuantGrid.of(8, true), false);
        assertEquals(-4900, affine.min(), w);
        assertEquals(4900, affine.max(), w);
    }

    @Test
    void hundredthPercentileIsMinMaxAndNeedsAHistogram() {
        float[] x = Samples.gaussian(5000, 12);
        MinMaxStats m = MinMaxStats.of(x);
        PercentileCalibrator p100 = new PercentileCalibrator(100);
        TensorStats affine = TensorStats.of("t", x, HistogramSpec.range(m));
        assertEquals(new Range(m.min(), m.max()), p100.calibrate(affine, UINT8, false));
        TensorStats sym = TensorStats.of("t", x, HistogramSpec.symmetric(m));
        assertEquals(Range.symmetric(m.absMax()), p100.calibrate(sym, INT8, true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> p100.calibrate(TensorStats.of("conv2.in", x), INT8, true));
        assertTrue(e.getMessage().contains("conv2.in") && e.getMessage().contains("percentile"), e.getMessage());
    }
}
