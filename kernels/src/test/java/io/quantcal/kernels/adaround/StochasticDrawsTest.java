package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Stochastic rounding's draws on a Gemm layer (transB = 0, so the problem's W is the ONNX weight transposed): each
 * draw's MSE is the layer MSE of its codes computed independently, the codes are within one step of W/s and the
 * draws differ; seeded draws repeat; rounding to nearest's MSE is the baseline.
 */
class StochasticDrawsTest {

    @Test
    void drawsAreSeededAndTheirMseIsTheLayerMseOfTheirCodes() {
        SplittableRandom r = new SplittableRandom(5);
        int k = 12, m = 6, rows = 200;
        float[] w = new float[k * m];                              // ONNX Gemm weight [K, M]
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.3f;
        float[] x = new float[rows * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        double[] clips = new double[m];
        for (int i = 0; i < w.length; i++) clips[i % m] = Math.max(clips[i % m], Math.abs(w[i]));
        QuantParams wq = SymmetricQuantizer.fromClips(4, true, 1, clips);
        AdaRoundProblem p = AdaRoundProblem.gemm("fc", Nd4j.create(x, new long[] {rows, k}), Nd4j.create(w, new long[] {k, m}),
                null, false, wq, false);

        StochasticDraws.Draw a = StochasticDraws.draw(p, w, wq, StochasticDraws.seed(0, 3, 0), 64);
        StochasticDraws.Draw b = StochasticDraws.draw(p, w, wq, StochasticDraws.seed(0, 3, 1), 64);
        StochasticDraws.Draw again = StochasticDraws.draw(p, w, wq, StochasticDraws.seed(0, 3, 0), 64);
        assertArrayEquals(a.codes(), again.codes());
        assertEquals(a.mse(), again.mse());
        assertTrue(!java.util.Arrays.equals(a.codes(), b.codes()), "two seeds, two draws");
        assertEquals(a.mseNearest(), b.mseNearest());

        int[] nearest = FakeQuant.quantize(w, new long[] {k, m}, wq);
        int differ = 0;
        for (int i = 0; i < w.length; i++) {
            double v = w[i] / (float) wq.scale(i % m);
            assertTrue(a.codes()[i] == Math.floor(v) || a.codes()[i] == Math.ceil(v), "code " + a.codes()[i] + " for " + v);
            if (a.codes()[i] != nearest[i]) differ++;
        }
        assertTrue(differ > 0);
        assertEquals(mse(x, rows, k, m, FakeQuant.dequantize(a.codes(), new long[] {k, m}, wq), w), a.mse(), 1e-5 * a.mse());
        assertEquals(mse(x, rows, k, m, FakeQuant.dequantize(nearest, new long[] {k, m}, wq), w), a.mseNearest(), 1e-5 * a.mseNearest());
        // one draw is worse than rounding to nearest on average (Table 1 of the paper): here both are
        assertTrue(a.mse() > a.mseNearest() && b.mse() > b.mseNearest(), a + " " + b);
    }

    /** Mean over rows and outputs of (x·ŵ − x·w)², in double. */
    static double mse(float[] x, int rows, int k, int m, float[] wq, float[] w) {
        double sum = 0;
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < m; j++) {
                double y = 0, yf = 0;
                for (int d = 0; d < k; d++) {
                    y += (double) x[i * k + d] * wq[d * m + j];
                    yf += (double) x[i * k + d] * w[d * m + j];
                }
                sum += (y - yf) * (y - yf);
            }
        }
        return sum / ((double) rows * m);
    }
}
