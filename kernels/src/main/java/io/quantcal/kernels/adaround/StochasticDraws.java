package io.quantcal.kernels.adaround;

import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.StochasticQuantizer;
import java.io.Serializable;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Stochastic rounding as a layer-wise baseline (Nagel et al. 2020, AdaRound, Table 1 "stochastic rounding" and its
 * best of K draws): one seeded draw of {@link StochasticQuantizer} codes for a layer's weights and the layer output's
 * reconstruction MSE with them, on the same problem AdaRound solves. A caller draws K times with K seeds and keeps
 * the lowest MSE. One call per Spark task.
 */
public final class StochasticDraws {

    private StochasticDraws() {}

    /**
     * One draw.
     *
     * @param codes      the drawn integer weights in the ONNX weight's layout (row-major over it, the order the seed
     *                   draws in)
     * @param mse        mean over all columns and output channels of (act(Ŵ X + b) − Y)² with these codes
     * @param mseNearest the same with rounding to nearest (ONNX QuantizeLinear): the baseline
     */
    public record Draw(int[] codes, double mse, double mseNearest) implements Serializable {}

    /** The seed of draw {@code draw} of layer {@code layer} under run seed {@code seed}: fixed by the three alone. */
    public static long seed(long seed, int layer, int draw) {
        long h = seed * 0x9E3779B97F4A7C15L + layer;
        h = (h ^ (h >>> 31)) * 0xBF58476D1CE4E5B9L + draw;
        return h ^ (h >>> 29);
    }

    /**
     * @param weight the layer's weight in its ONNX layout (the problem's W is the same values, transposed for Gemm
     *               without transB and MatMul)
     * @param params the weight's quantization parameters (per tensor or per output channel)
     */
    public static Draw draw(AdaRoundProblem problem, float[] weight, QuantParams params, long seed, int batchColumns) {
        long[] shape = problem.weightShape();
        int[] codes = StochasticQuantizer.quantize(weight, shape, params, seed);
        int[] nearest = FakeQuant.quantize(weight, shape, params);
        AdaRoundLoss loss = new AdaRoundLoss(problem, batchColumns, DataType.FLOAT);
        double mse = AdaRoundOptimizer.meanSquaredError(loss, problemLayout(FakeQuant.dequantize(codes, shape, params), problem), problem);
        double mseNearest = AdaRoundOptimizer.meanSquaredError(loss,
                problemLayout(FakeQuant.dequantize(nearest, shape, params), problem), problem);
        return new Draw(codes, mse, mseNearest);
    }

    /** ONNX-layout values as the problem's row-major [outChannels, depth] ({@link AdaRoundProblem#layout}). */
    static double[] problemLayout(float[] onnx, AdaRoundProblem p) {
        float[] rows = p.layout().toRows(onnx, p.outChannels(), p.depth(), p.weightShape());
        double[] w = new double[rows.length];
        for (int i = 0; i < rows.length; i++) w[i] = rows[i];
        return w;
    }
}
