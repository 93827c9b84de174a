package io.quantcal.kernels.quant;

import java.util.SplittableRandom;

/**
 * Stochastic rounding (Gupta et al. 2015, "Deep Learning with Limited Numerical Precision", section 2):
 * q = clamp(rint(x/s + u) + Z, qmin, qmax) with u ~ U(−1/2, 1/2), i.e. x_int = round((x + ε)/s) + Z with
 * ε uniform over one step. With x/s = n + f (0 ≤ f < 1) the code is n + 1 with probability f and n otherwise,
 * so E[x̂] = x inside the range: the rounding is unbiased, at the price of a variance of f(1 − f)·s².
 *
 * <p>Reproducible: one {@link SplittableRandom} seeded with {@code seed} draws one u per element in row-major
 * order, whatever the granularity, so the same seed gives the same codes on every machine.
 */
public final class StochasticQuantizer {

    private StochasticQuantizer() {}

    /** Integer codes of {@code x} (row-major, {@code shape}) under {@code p}, rounded stochastically. */
    public static int[] quantize(float[] x, long[] shape, QuantParams p, long seed) {
        int[] q = new int[x.length];
        SplittableRandom random = new SplittableRandom(seed);
        FakeQuant.forEachChannelRun(x.length, shape, p, (from, to, c) -> {
            float s = (float) p.scale(c);
            int z = p.zeroPoint(c);
            for (int i = from; i < to; i++) q[i] = quantize(x[i], s, z, p.qmin(), p.qmax(), random.nextDouble() - 0.5);
        });
        return q;
    }

    /** x̂ = (q − Z)·s of the stochastic codes: fake quantization with stochastic rounding. */
    public static float[] apply(float[] x, long[] shape, QuantParams p, long seed) {
        int[] q = quantize(x, shape, p, seed);
        return FakeQuant.dequantize(q, shape, p);
    }

    /**
     * One element: q = clamp(rint(x/s + u) + Z, qmin, qmax) for a given u in [−1/2, 1/2). x/s is divided in
     * float32 as in {@link AffineQuantizer#quantize}, so that u = 0 gives the deterministic ONNX rule except on
     * exact ties; the noise is added in double so that it is not rounded away for large x/s.
     */
    static int quantize(float x, float scale, int zeroPoint, int qmin, int qmax, double u) {
        double r = Math.rint((double) (x / scale) + u) + zeroPoint;
        // NaN fails both comparisons and (int) NaN is 0, as in AffineQuantizer.
        if (r < qmin) return qmin;
        if (r > qmax) return qmax;
        return (int) r;
    }
}
