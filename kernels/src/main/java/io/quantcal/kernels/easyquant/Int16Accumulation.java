package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;

/**
 * How many int products of a weight grid and an activation grid an int16 accumulator can sum without
 * overflow: the reason EasyQuant (Wu et al. 2020, Sec. 3.3) goes to 7 bits — int7 × int7 products leave
 * room to add several in 16 bits before widening to int32, which int8 × uint8 does not.
 *
 * <p>The rule, worst case: every product has the largest magnitude the two grids allow,
 * P = max(|qmin_w|, |qmax_w|) · max(|qmin_a|, |qmax_a|), all with the same sign, so t products fit when
 * t·P ≤ 32767 (the positive limit; the negative one, 32768, is never the tighter). Hence
 * t = floor(32767 / P), 0 when a single product overflows. The codes are the stored integers q, before
 * any zero point is subtracted (a kernel that subtracts the zero point first sees other magnitudes).
 * Examples: narrow int8 × uint8: 127·255 = 32385 → 1; narrow int7 × narrow int7: 63·63 = 3969 → 8.
 */
public final class Int16Accumulation {

    public static final int INT16_MAX = Short.MAX_VALUE;

    private Int16Accumulation() {}

    /**
     * @param maxProduct          worst-case |q_w·q_a|
     * @param productsPerInt16    how many such products an int16 sum holds (0: not even one)
     * @param reductionLength     products per output value of the layer (Conv C/group·kh·kw, Gemm K)
     * @param int16Partials       int16 partial sums per output value, ceil(reductionLength / productsPerInt16)
     *                            (0 when productsPerInt16 is 0: int16 cannot hold the products)
     */
    public record Report(long maxProduct, int productsPerInt16, long reductionLength, long int16Partials)
            implements Serializable {}

    /** Largest |q| on the grid. */
    public static int maxMagnitude(QuantGrid g) {
        return Math.max(Math.abs(g.qmin()), Math.abs(g.qmax()));
    }

    /** floor(32767 / (max|q_w|·max|q_a|)). */
    public static int maxProducts(QuantGrid weight, QuantGrid activation) {
        long p = (long) maxMagnitude(weight) * maxMagnitude(activation);
        return (int) Math.min(Integer.MAX_VALUE, INT16_MAX / p);
    }

    public static Report report(QuantParams weight, QuantParams activation, long reductionLength) {
        long p = (long) maxMagnitude(weight.grid()) * maxMagnitude(activation.grid());
        int t = maxProducts(weight.grid(), activation.grid());
        long partials = t == 0 ? 0 : (reductionLength + t - 1) / t;
        return new Report(p, t, reductionLength, partials);
    }

    /** The layer's reduction length: Conv C/group·kh·kw, Gemm/MatMul K. */
    public static long reductionLength(LayerProblem p) {
        long[] w = p.ws();
        if (w.length == 4) return w[1] * w[2] * w[3];
        long[] x = p.xs();
        return x[x.length - 1];
    }
}
