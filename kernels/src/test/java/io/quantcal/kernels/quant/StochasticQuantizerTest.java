package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StochasticQuantizerTest {

    private static final QuantParams INT8 = QuantParams.perTensor(QuantGrid.of(8, true), false, 0.25, 3);

    @Test
    void sameSeedSameCodesOtherSeedOtherCodes() {
        float[] x = uniform(10_000, -20, 20, 1);
        long[] shape = {100, 100};
        int[] a = StochasticQuantizer.quantize(x, shape, INT8, 7);
        assertArrayEquals(a, StochasticQuantizer.quantize(x, shape, INT8, 7));
        assertArrayEquals(StochasticQuantizer.apply(x, shape, INT8, 7), StochasticQuantizer.apply(x, shape, INT8, 7));
        int[] b = StochasticQuantizer.quantize(x, shape, INT8, 8);
        int differ = 0;
        for (int i = 0; i < x.length; i++) if (a[i] != b[i]) differ++;
        // each in-range code is a coin flip with P(up) = frac(x/s), uniform: about a third of the codes differ
        assertTrue(differ > 2500 && differ < 4200, "codes that differ between seeds: " + differ);
    }

    @Test
    void oneDrawPerElementInRowMajorOrderPerChannel() {
        long[] shape = {4, 6, 5};
        QuantParams p = AffineQuantizer.fromRanges(QuantGrid.of(4, false), 1,
                new double[] {-1, -2, -0.5, 0, -3, -1}, new double[] {1, 0.5, 2, 3, 1, 4});
        float[] x = uniform(120, -4, 4, 2);
        int[] q = StochasticQuantizer.quantize(x, shape, p, 99);
        // the contract, written out: u_i = U[0,1) − 1/2 from SplittableRandom(seed), i = 0, 1, ... row-major;
        // element i belongs to channel (i / 5) % 6 of axis 1
        SplittableRandom r = new SplittableRandom(99);
        for (int i = 0; i < x.length; i++) {
            int c = (i / 5) % 6;
            float s = (float) p.scale(c);
            double u = r.nextDouble() - 0.5;
            double expected = Math.max(p.qmin(), Math.min(p.qmax(), Math.rint((double) (x[i] / s) + u) + p.zeroPoint(c)));
            assertEquals((int) expected, q[i], "element " + i + " channel " + c);
        }
        assertArrayEquals(FakeQuant.dequantize(q, shape, p), StochasticQuantizer.apply(x, shape, p, 99));
    }

    @Test
    void unbiasedOnAConstantThreeTenthsOfAStep() {
        int n = 200_000;
        float s = 0.25f;
        float[] x = new float[n];
        java.util.Arrays.fill(x, 0.3f * s); // x/s = 0.3 (0.3f·0.25f/0.25f is exact): code Z+1 w.p. 0.3, Z w.p. 0.7
        QuantParams p = QuantParams.perTensor(QuantGrid.of(8, true), false, s, 3);
        float[] y = StochasticQuantizer.apply(x, new long[] {n}, p, 2024);
        double mean = 0;
        for (float v : y) mean += v;
        mean /= n;
        // x̂ ∈ {0, s}: mean = s·p̂ with p̂ ~ Binomial(n, 0.3)/n, σ = s·√(0.3·0.7/n) = 0.001025·s
        double sigma = s * Math.sqrt(0.3 * 0.7 / n);
        assertEquals(0.3 * s, mean, 4 * sigma);
        // deterministic rounding of the same tensor is biased by the whole 0.3·s
        assertEquals(0.0f, FakeQuant.apply(x, new long[] {n}, p)[0]);
    }

    @Test
    void unbiasedOnANegativeValue() {
        int n = 200_000;
        float[] x = new float[n];
        java.util.Arrays.fill(x, -1.75f * 0.25f); // x/s = −1.75: code Z−2 w.p. 0.75, Z−1 w.p. 0.25
        float[] y = StochasticQuantizer.apply(x, new long[] {n}, INT8, 5);
        double mean = 0;
        for (float v : y) mean += v;
        mean /= n;
        double sigma = 0.25 * Math.sqrt(0.75 * 0.25 / n);
        assertEquals(-1.75 * 0.25, mean, 4 * sigma);
    }

    @Test
    void neverMoreThanOneStepFromAnInRangeValue() {
        QuantParams p = SymmetricQuantizer.fromClips(3, true, 0, new double[] {0.3, 1.1, 7});
        float[] x = new float[3 * 20_000];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < x.length; i++) {
            double clip = new double[] {0.3, 1.1, 7}[i / 20_000];
            x[i] = (float) r.nextDouble(-clip, clip);
        }
        long[] shape = {3, 20_000};
        int[] q = StochasticQuantizer.quantize(x, shape, p, 11);
        float[] y = StochasticQuantizer.apply(x, shape, p, 11);
        for (int i = 0; i < x.length; i++) {
            float s = (float) p.scale(i / 20_000);
            double v = x[i] / s;
            assertTrue(q[i] == Math.floor(v) || q[i] == Math.ceil(v), "code " + q[i] + " for x/s = " + v);
            assertTrue(Math.abs(y[i] - x[i]) <= s * (1 + 1e-6), "x̂ = " + y[i] + " for x = " + x[i] + ", s = " + s);
        }
    }

    @Test
    void saturatesOutsideTheGrid() {
        int[] q = StochasticQuantizer.quantize(new float[] {1e6f, -1e6f, Float.POSITIVE_INFINITY}, new long[] {3}, INT8, 1);
        assertArrayEquals(new int[] {127, -128, 127}, q);
    }

    private static float[] uniform(int n, double lo, double hi, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(lo, hi);
        return x;
    }
}
