package io.quantcal.kernels.adaround;

import java.io.Serializable;
import java.util.Arrays;

/**
 * What AdaRound returns for one layer.
 *
 * @param integerWeights    the stored codes q = clamp(⌊W/s⌋ + h, qmin − Z, qmax − Z) + Z with h ∈ {0, 1}, in the
 *                          ONNX weight's own row-major layout ({@code shape}); dequantize as (q − Z)·s
 * @param shape             the ONNX weight shape
 * @param mseRoundToNearest mean over all outputs and all columns of (act(Ŵ X + b) − Y)², Ŵ rounded to nearest
 *                          (ONNX QuantizeLinear) with the same scales: the baseline
 * @param mseAdaRound       the same mean with the AdaRound weights (h hardened)
 * @param lossHistory       the batch loss L (reconstruction + λ_t f_reg) at iterations 0, 100, 200, …
 * @param iterations        Adam steps taken
 * @param nanos             wall time of the optimization, including the two MSE evaluations
 */
public record AdaRoundResult(int[] integerWeights, long[] shape, double mseRoundToNearest, double mseAdaRound,
                             double[] lossHistory, int iterations, long nanos) implements Serializable {

    public AdaRoundResult {
        integerWeights = integerWeights.clone();
        shape = shape.clone();
        lossHistory = lossHistory.clone();
    }

    @Override
    public int[] integerWeights() {
        return integerWeights.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public double[] lossHistory() {
        return lossHistory.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AdaRoundResult r && Arrays.equals(integerWeights, r.integerWeights) && Arrays.equals(shape, r.shape)
                && Double.compare(mseRoundToNearest, r.mseRoundToNearest) == 0 && Double.compare(mseAdaRound, r.mseAdaRound) == 0
                && Arrays.equals(lossHistory, r.lossHistory) && iterations == r.iterations && nanos == r.nanos;
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(integerWeights) + Arrays.hashCode(lossHistory) + Double.hashCode(mseAdaRound);
    }

    @Override
    public String toString() {
        return "AdaRoundResult[shape=" + Arrays.toString(shape) + ", mse round-to-nearest=" + mseRoundToNearest
                + ", mse adaround=" + mseAdaRound + ", iterations=" + iterations + ", " + nanos / 1e6 + " ms]";
    }
}
