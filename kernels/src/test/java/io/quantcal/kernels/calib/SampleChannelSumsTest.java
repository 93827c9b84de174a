package io.quantcal.kernels.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.dfq.ChannelMeans;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SampleChannelSumsTest {

    /** 9 samples [2, 3, 5] with values of very different magnitudes, so that the order of double additions matters. */
    static float[][] samples() {
        Random r = new Random(13);
        float[][] s = new float[9][2 * 3 * 5];
        for (float[] x : s) for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(12) - 4));
        return s;
    }

    /** Per-sample double sums of channel c, in index order (what ChannelMeans.of does for one sample). */
    static double sampleSum(float[] x, int c) {
        double s = 0;
        for (int k = 0; k < 15; k++) s += x[c * 15 + k];
        return s;
    }

    static float[] batch(float[][] s, int from, int to) {
        float[] b = new float[(to - from) * 30];
        for (int i = from; i < to; i++) System.arraycopy(s[i], 0, b, (i - from) * 30, 30);
        return b;
    }

    @Test
    void theSumIsTheExactSumOfThePerSampleSumsRoundedOnce() {
        float[][] s = samples();
        SampleChannelSums acc = new SampleChannelSums("x", 2);
        acc.add(batch(s, 0, 9), new long[] {9, 2, 3, 5});
        ChannelMeans m = acc.toChannelMeans();
        assertEquals(9 * 15, m.count());
        for (int c = 0; c < 2; c++) {
            BigDecimal exact = BigDecimal.ZERO;
            for (float[] x : s) exact = exact.add(new BigDecimal(sampleSum(x, c)));
            assertEquals(exact.round(MathContext.DECIMAL128).doubleValue(), m.sums()[c], 0.0, "channel " + c);
        }
    }

    @Test
    void batchingAndMergeOrderChangeNoBit() {
        float[][] s = samples();
        SampleChannelSums whole = new SampleChannelSums("x", 2);
        whole.add(batch(s, 0, 9), new long[] {9, 2, 3, 5});
        // other batches, merged in another order (as partitions and tasks would)
        SampleChannelSums a = new SampleChannelSums("x", 2), b = new SampleChannelSums("x", 2), c = new SampleChannelSums("x", 2);
        a.add(batch(s, 0, 2), new long[] {2, 2, 3, 5});
        a.add(batch(s, 2, 3), new long[] {1, 2, 3, 5});
        b.add(batch(s, 3, 7), new long[] {4, 2, 3, 5});
        c.add(java.nio.FloatBuffer.wrap(batch(s, 7, 9)), 2);
        ChannelMeans merged = c.merge(a).merge(b).toChannelMeans();
        assertEquals(whole.toChannelMeans(), merged);
        // while the left-to-right double sums of the same per-sample sums in these two orders differ
        double forward = 0, backward = 0;
        for (int i = 0; i < 9; i++) forward += sampleSum(s[i], 0);
        for (int i = 8; i >= 0; i--) backward += sampleSum(s[i], 0);
        System.out.printf("channel 0: exact %s, forward %s, backward %s%n", merged.sums()[0], forward, backward);
    }

    @Test
    void extremeMagnitudesAndCancellationAreExact() {
        SampleChannelSums acc = new SampleChannelSums("x", 1);
        // 1e30 + 1 − 1e30 = 1 exactly (a double sum gives 0); a subnormal stays
        acc.add(new float[] {1e30f, 1f, -1e30f, Float.MIN_VALUE}, new long[] {4, 1});
        assertArrayEquals(new double[] {1 + (double) Float.MIN_VALUE}, acc.toChannelMeans().sums());
        SampleChannelSums none = new SampleChannelSums("x", 3);
        assertArrayEquals(new double[3], none.toChannelMeans().sums());
    }

    @Test
    void wrongShapesAndNonFiniteValuesNameTheTensor() {
        SampleChannelSums acc = new SampleChannelSums("conv_in", 3);
        var e = assertThrows(IllegalArgumentException.class, () -> acc.add(new float[8], new long[] {1, 2, 4}));
        assertEquals(true, e.getMessage().contains("conv_in") && e.getMessage().contains("3 channels"), e.getMessage());
        var nan = assertThrows(IllegalArgumentException.class, () -> acc.add(new float[] {0, Float.NaN, 0}, new long[] {1, 3}));
        assertEquals(true, nan.getMessage().contains("conv_in"), nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> acc.merge(new SampleChannelSums("conv_in", 2)));
        assertEquals(0, Arrays.stream(acc.toChannelMeans().sums()).filter(x -> x != 0).count());
    }
}
