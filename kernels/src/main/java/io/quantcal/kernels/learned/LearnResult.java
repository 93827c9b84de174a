package io.quantcal.kernels.learned;

import java.io.Serializable;
import java.util.Arrays;

/**
 * What a learned quantizer returns for one layer.
 *
 * @param integerWeights the codes q = clamp(round(W/s) + Z, qmin, qmax) of the learned (or, without weight updates,
 *                       the given) W with the learned steps, in the ONNX weight's row-major layout ({@code shape})
 * @param shape          the ONNX weight shape
 * @param weightScales   the learned weight steps (1 or one per output channel), float32-exact
 * @param inputScale     the learned input-activation step, float32-exact; NaN when the input is not quantized
 * @param mseBaseline    mean over all columns and output channels of (act(Ŵ X̂ + b) − Y)² with the initial steps
 *                       and round-to-nearest: what the layer had before
 * @param mseLearned     the same with the returned steps and codes
 * @param keptInitial    true when learning did not lower the MSE on all columns, so the initial steps were kept
 * @param lossHistory    the batch loss at iterations 0, 100, 200, …
 * @param qil            QIL's learned intervals and pruning ratios; null for LSQ
 */
public record LearnResult(int[] integerWeights, long[] shape, double[] weightScales, double inputScale,
                          double mseBaseline, double mseLearned, boolean keptInitial, double[] lossHistory,
                          int iterations, long nanos, QilIntervals qil) implements Serializable {

    /**
     * What QIL learned for one layer: per weight step c_W, d_W, γ_W; the input's c_X, d_X (NaN when the input's interval
     * is not learned); the fractions of weights pruned (|w| &lt; c_W − d_W, code 0) and clipped (|w| &gt; c_W + d_W), and of
     * the captured input values pruned and clipped; the MSE of QIL's own quantizers ({@code mseQil}) beside the
     * deployed one ({@link LearnResult#mseLearned}: the input through the uniform grid [0, c_X + d_X]).
     */
    public record QilIntervals(double[] c, double[] d, double[] gamma, double inputC, double inputD, double weightsPruned,
                               double weightsClipped, double inputsPruned, double inputsClipped, double mseQil)
            implements Serializable {}

    public LearnResult {
        integerWeights = integerWeights.clone();
        shape = shape.clone();
        weightScales = weightScales.clone();
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
    public double[] weightScales() {
        return weightScales.clone();
    }

    @Override
    public double[] lossHistory() {
        return lossHistory.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LearnResult r && Arrays.equals(integerWeights, r.integerWeights) && Arrays.equals(shape, r.shape)
                && Arrays.equals(weightScales, r.weightScales) && Double.compare(inputScale, r.inputScale) == 0
                && Double.compare(mseBaseline, r.mseBaseline) == 0 && Double.compare(mseLearned, r.mseLearned) == 0
                && keptInitial == r.keptInitial && Arrays.equals(lossHistory, r.lossHistory) && iterations == r.iterations
                && nanos == r.nanos;
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(integerWeights) + Arrays.hashCode(weightScales) + Double.hashCode(mseLearned);
    }

    @Override
    public String toString() {
        return "LearnResult[shape=" + Arrays.toString(shape) + ", mse " + mseBaseline + " -> " + mseLearned
                + (keptInitial ? " (initial kept)" : "") + ", " + iterations + " iterations, " + nanos / 1e6 + " ms]";
    }
}
