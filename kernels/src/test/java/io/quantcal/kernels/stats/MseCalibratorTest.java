package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import org.junit.jupiter.api.Test;

/**
 * The MSE calibrator against brute force: the actual mean squared error of FakeQuant on the raw samples, for
 * every candidate the calibrator could have chosen.
 */
class MseCalibratorTest {

    @Test
    void laplaceFourBitSymmetric() {
        checkSymmetric(Samples.laplace(200_000, 1, 31), SymmetricQuantizer.grid(4, true));
    }

    @Test
    void laplaceEightBitSymmetric() {
        checkSymmetric(Samples.laplace(200_000, 1, 32), SymmetricQuantizer.grid(8, true));
    }

    @Test
    void shiftedLaplaceAffineOnUint8AndInt4() {
        float[] x = Samples.laplace(200_000, 0.5, 33);
        for (int i = 0; i < x.length; i++) x[i] += 1;
        checkAffine(x, QuantGrid.of(8, false));
        checkAffine(x, QuantGrid.of(4, true));
    }

    @Test
    void uniformDataKeepsTheWholeRange() {
        float[] x = Samples.uniform(200_000, -1, 1, 34);
        MinMaxStats m = MinMaxStats.of(x);
        TensorStats s = TensorStats.of("t", x, HistogramSpec.symmetric(m));
        Range r = new MseCalibrator().calibrate(s, SymmetricQuantizer.grid(8, true), true);
        // clipping a uniform tail costs (1 − c)³/3 against a rounding gain of order c²/(3·127²): c* ≈ 0.997
        assertTrue(r.max() >= 0.985 * m.absMax(), "clip " + r.max() + " of max " + m.absMax());
        Range affine = new MseCalibrator().calibrate(TensorStats.of("t", x, HistogramSpec.range(m)), QuantGrid.of(8, false), false);
        assertTrue(affine.max() >= 0.985 * m.max() && affine.min() <= 0.985 * m.min(), "range " + affine);
    }

    @Test
    void expectedSquaredErrorOfAHistogramByHand() {
        // centres 0.5, 1.5, 2.5, 3.5 with counts 1, 0, 2, 1; 3-bit unsigned grid [0, 7], s = 0.4 (0.4f), Z = 0:
        // 0.5/s = 1.25 → 1 → 0.4, error 0.1; 2.5/s = 6.25 → 6 → 2.4, error 0.1; 3.5/s = 8.75 → 9, clamps to 7 → 2.8,
        // error 0.7: (0.01 + 2·0.01 + 0.49)/4 = 0.13
        Histogram h = new Histogram(new HistogramSpec(0, 4, 4), new long[] {1, 0, 2, 1});
        QuantParams p = QuantParams.perTensor(QuantGrid.of(3, false), true, 0.4, 0);
        assertEquals(0.13, MseCalibrator.expectedSquaredError(h, p), 1e-6);
    }

    @Test
    void allZeroTensorAndMissingHistogram() {
        float[] x = new float[10];
        TensorStats s = TensorStats.of("zeros", x, HistogramSpec.symmetric(MinMaxStats.of(x)));
        assertEquals(new Range(0, 0), new MseCalibrator().calibrate(s, SymmetricQuantizer.grid(8, true), true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MseCalibrator().calibrate(TensorStats.of("fc1.in", x), SymmetricQuantizer.grid(8, true), true));
        assertTrue(e.getMessage().contains("fc1.in") && e.getMessage().contains("mse"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new MseCalibrator(0));
    }

    private static void checkSymmetric(float[] x, QuantGrid grid) {
        MinMaxStats m = MinMaxStats.of(x);
        MseCalibrator mse = new MseCalibrator();
        TensorStats s = TensorStats.of("t", x, mse.histogramSpec(m, true).orElseThrow());
        Range chosen = mse.calibrate(s, grid, true);
        double c = chosen.max();
        assertEquals(-c, chosen.min());
        double e = empiricalMse(x, chosen.toParams(grid, true));
        double best = Double.POSITIVE_INFINITY;
        for (int k = 1; k <= MseCalibrator.DEFAULT_CANDIDATES; k++) {
            best = Math.min(best, empiricalMse(x, Range.symmetric(k / 200.0 * m.absMax()).toParams(grid, true)));
        }
        String what = grid.bits() + "-bit clip " + c + " (max " + m.absMax() + "), MSE " + e;
        assertTrue(e <= best * 1.001, what + " vs brute-force best " + best);
        assertTrue(c < 0.9 * m.absMax(), what + ": a Laplace tail is worth clipping");
        assertTrue(e < empiricalMse(x, Range.symmetric(m.absMax()).toParams(grid, true)), what + " vs minmax");
        assertTrue(e < empiricalMse(x, Range.symmetric(0.9 * c).toParams(grid, true)), what + " vs 0.9 c");
        assertTrue(e < empiricalMse(x, Range.symmetric(1.1 * c).toParams(grid, true)), what + " vs 1.1 c");
    }

    private static void checkAffine(float[] x, QuantGrid grid) {
        MinMaxStats m = MinMaxStats.of(x);
        MseCalibrator mse = new MseCalibrator();
        TensorStats s = TensorStats.of("t", x, mse.histogramSpec(m, false).orElseThrow());
        Range chosen = mse.calibrate(s, grid, false);
        double e = empiricalMse(x, chosen.toParams(grid, false));
        double best = Double.POSITIVE_INFINITY;
        for (int k = 1; k <= MseCalibrator.DEFAULT_CANDIDATES; k++) {
            double f = k / 200.0;
            best = Math.min(best, empiricalMse(x, new Range(f * m.min(), f * m.max()).toParams(grid, false)));
        }
        String what = grid + " range " + chosen + " (observed [" + m.min() + ", " + m.max() + "]), MSE " + e;
        assertTrue(e <= best * 1.001, what + " vs brute-force best " + best);
        assertTrue(e < empiricalMse(x, new Range(m.min(), m.max()).toParams(grid, false)), what + " vs minmax");
        assertTrue(e < empiricalMse(x, new Range(0.9 * chosen.min(), 0.9 * chosen.max()).toParams(grid, false)), what + " vs 0.9×");
        assertTrue(e < empiricalMse(x, new Range(1.1 * chosen.min(), 1.1 * chosen.max()).toParams(grid, false)), what + " vs 1.1×");
    }

    /** mean (x − FakeQuant(x))² over the raw samples. */
    private static double empiricalMse(float[] x, QuantParams p) {
        float[] y = FakeQuant.apply(x, new long[] {x.length}, p);
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double d = (double) x[i] - y[i];
            s += d * d;
        }
        return s / x.length;
    }
}
