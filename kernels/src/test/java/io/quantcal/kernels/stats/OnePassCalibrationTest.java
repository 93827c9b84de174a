package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.QuantGrid;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The histogram calibrators on one pass (exponent-binned histogram, re-binned into the regular bins) against the two
 * passes they replace (regular bins placed by a min/max pass, every value counted in its bin): percentile and mse
 * ranges differ by at most one regular bin width on each side. Entropy calibration is not that stable: its KL
 * minimum over up to 2048 candidates is flat and depends on which sparse tail bins are empty, so moving a few values to
 * the neighbouring bin can move it by tens of bins (as drawing other samples of the same distribution moves it by
 * hundreds); its test bounds how often and how much that costs.
 */
class OnePassCalibrationTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        String[] data = {"gaussian", "laplace", "relu-gaussian", "uniform-shifted", "lognormal", "relu6-laplace", "negative-exp"};
        Calibrator[] cals = {new PercentileCalibrator(99.99), new PercentileCalibrator(99.9), new MseCalibrator()};
        for (String d : data) {
            for (Calibrator c : cals) {
                for (int bits : new int[] {8, 4}) {
                    out.add(Arguments.of(d, c, bits, true));
                    out.add(Arguments.of(d, c, bits, false));
                }
            }
        }
        return out.stream();
    }

    static float[] data(String kind, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            double g = r.nextGaussian();
            double u = r.nextDouble() - 0.5;
            double lap = -Math.signum(u) * Math.log(1 - 2 * Math.abs(u));
            x[i] = (float) switch (kind) {
                case "gaussian" -> 0.7 * g;
                case "laplace" -> 3 * lap;
                case "relu-gaussian" -> Math.max(0, 1.3 * g + 0.2);
                case "uniform-shifted" -> 2 + 5 * r.nextDouble();
                case "lognormal" -> Math.exp(g) - 0.3;
                case "relu6-laplace" -> Math.min(6, Math.max(0, 2 * lap + 1));
                case "negative-exp" -> -Math.log(1 - r.nextDouble()) * -0.05;
                default -> throw new IllegalArgumentException(kind);
            };
        }
        return x;
    }

    @ParameterizedTest(name = "{0} {1} {2} bits symmetric {3}")
    @MethodSource("cases")
    void withinOneRegularBinOfTheTwoPassResult(String kind, Calibrator cal, int bits, boolean symmetric) {
        float[] x = data(kind, 200_000, kind.hashCode());
        QuantGrid grid = QuantGrid.of(bits, symmetric);
        // two passes: bins placed by the min/max of the data, each value counted in its bin
        MinMaxStats m = MinMaxStats.of("t", x);
        HistogramSpec spec = cal.histogramSpec(m, symmetric).orElseThrow();
        Range before = cal.calibrate(TensorStats.of("t", x, spec), grid, symmetric);
        // one pass: exponent bins, then the same regular bins re-binned
        TensorStats one = TensorStats.of("t", ExponentHistogram.of("t", x));
        Range after = cal.calibrate(one.withHistogram(cal.histogramSpec(one.minMax(), symmetric).orElseThrow()), grid, symmetric);
        double w = spec.binWidth();
        assertTrue(Math.abs(after.min() - before.min()) <= w && Math.abs(after.max() - before.max()) <= w,
                "two passes " + before + ", one pass " + after + ", bin width " + w);
    }

    static Stream<Arguments> entropyCases() {
        List<Arguments> out = new ArrayList<>();
        for (String d : new String[] {"gaussian", "laplace", "relu-gaussian", "lognormal", "relu6-laplace", "negative-exp"}) {
            for (int bits : new int[] {8, 4}) {
                out.add(Arguments.of(d, bits, true));
                out.add(Arguments.of(d, bits, false));
            }
        }
        return out.stream();
    }

    /**
     * Entropy, which does not stay within one bin: over 6 distributions × 2 bit widths × 2 grids × 4 draws, most one-pass
     * ranges are the two-pass range within one bin, and every one quantizes the data (mean squared error of the deployed
     * grid over the values themselves) within 25 % of the two-pass range; the bounds are what this measured at
     * SUB_BITS = 10 (72 of 96 within one bin; of the 24 that moved, 9 quantize the data better, the worst +20.5 %), so
     * that a change that makes it worse fails.
     */
    @Test
    void entropyQuantizesTheDataAlmostAsWellAsTheTwoPassRange() {
        Calibrator cal = new EntropyCalibrator();
        int same = 0, all = 0;
        double worst = 0;
        StringBuilder moved = new StringBuilder();
        for (Arguments a : entropyCases().toList()) {
            String kind = (String) a.get()[0];
            int bits = (int) a.get()[1];
            boolean symmetric = (boolean) a.get()[2];
            QuantGrid grid = QuantGrid.of(bits, symmetric);
            for (long seed = 0; seed < 4; seed++) {
                float[] x = data(kind, 200_000, kind.hashCode() + seed);
                HistogramSpec spec = cal.histogramSpec(MinMaxStats.of("t", x), symmetric).orElseThrow();
                Range before = cal.calibrate(TensorStats.of("t", x, spec), grid, symmetric);
                Range after = cal.calibrate(TensorStats.of("t", ExponentHistogram.of("t", x)).withHistogram(spec), grid, symmetric);
                double ratio = mse(x, after.toParams(grid, symmetric)) / mse(x, before.toParams(grid, symmetric));
                worst = Math.max(worst, ratio);
                all++;
                if (Math.abs(after.min() - before.min()) <= spec.binWidth() && Math.abs(after.max() - before.max()) <= spec.binWidth()) {
                    same++;
                } else {
                    moved.append(String.format("%n  %s %d bits symmetric %s draw %d: %s -> %s, mse x%.3f", kind, bits, symmetric,
                            seed, before, after, ratio));
                }
            }
        }
        assertEquals(96, all);
        assertTrue(same >= 72 && worst <= 1.25, same + " of " + all + " within one bin, worst mse ratio " + worst + moved);
    }

    /** Mean squared error of x quantized with p (the ONNX QuantizeLinear rule) and dequantized. */
    static double mse(float[] x, io.quantcal.kernels.quant.QuantParams p) {
        float s = (float) p.scale(0);
        int z = p.zeroPoint(0);
        double sum = 0;
        for (float v : x) {
            float q = io.quantcal.kernels.quant.AffineQuantizer.dequantize(
                    io.quantcal.kernels.quant.AffineQuantizer.quantize(v, s, z, p.qmin(), p.qmax()), s, z);
            sum += ((double) v - q) * ((double) v - q);
        }
        return sum / x.length;
    }
}
