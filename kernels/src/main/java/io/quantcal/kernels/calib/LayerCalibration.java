package io.quantcal.kernels.calib;

import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.stats.Calibrator;
import io.quantcal.kernels.stats.HistogramSpec;
import io.quantcal.kernels.stats.MinMaxStats;
import io.quantcal.kernels.stats.Range;
import io.quantcal.kernels.stats.TensorStats;
import java.util.Optional;

/**
 * Turns statistics into quantization parameters, with quantcal's grid conventions:
 * <ul>
 *   <li>weights: symmetric on the narrow signed grid ([−127, 127] at 8 bits, zero point 0), or affine on
 *       the full signed grid ([−128, 127]);</li>
 *   <li>activations: affine on the unsigned grid ([0, 255], the ONNX Runtime default for activations), or
 *       symmetric: signed narrow, or unsigned [0, 2^b − 1] with zero point 0 when the tensor was never
 *       negative (after ReLU), which spends no level on a negative half nobody uses.</li>
 * </ul>
 */
public final class LayerCalibration {

    private LayerCalibration() {}

    public static QuantGrid weightGrid(int bits, boolean symmetric) {
        return symmetric ? SymmetricQuantizer.grid(bits, true) : QuantGrid.of(bits, true);
    }

    public static QuantGrid activationGrid(int bits, boolean symmetric, MinMaxStats stats) {
        if (!symmetric) return QuantGrid.of(bits, false);
        return SymmetricQuantizer.grid(bits, stats.min() < 0);
    }

    /** Activation parameters from merged statistics. */
    public static QuantParams activation(TensorStats stats, int bits, boolean symmetric, Calibrator calibrator) {
        return activation(stats, bits, symmetric, false, calibrator);
    }

    /**
     * Activation parameters from merged statistics; {@code signedOnly} keeps a never-negative tensor on the
     * signed symmetric grid too (TensorRT takes int8 with zero point 0 only, never uint8).
     */
    public static QuantParams activation(TensorStats stats, int bits, boolean symmetric, boolean signedOnly,
                                         Calibrator calibrator) {
        MinMaxStats mm = stats.requireValues(calibrator.name());
        QuantGrid grid = signedOnly && symmetric ? SymmetricQuantizer.grid(bits, true) : activationGrid(bits, symmetric, mm);
        Range r = calibrator.calibrate(stats, grid, symmetric);
        return r.toParams(grid, symmetric);
    }

    /**
     * Weight parameters, per tensor or per output channel along {@code axis}. Each channel (or the whole
     * tensor) is calibrated from its own statistics; histogram calibrators get a histogram built here.
     */
    public static QuantParams weight(String tensor, float[] w, long[] shape, int axis, boolean perChannel, int bits,
                                     boolean symmetric, Calibrator calibrator) {
        QuantGrid grid = weightGrid(bits, symmetric);
        if (!perChannel) {
            return calibrator.calibrate(stats(tensor, w, calibrator, symmetric), grid, symmetric).toParams(grid, symmetric);
        }
        float[][] channels = Channels.split(w, shape, axis);
        double[] scale = new double[channels.length];
        int[] zp = new int[channels.length];
        for (int c = 0; c < channels.length; c++) {
            QuantParams p = calibrator.calibrate(stats(tensor + "[" + c + "]", channels[c], calibrator, symmetric), grid,
                    symmetric).toParams(grid, symmetric);
            scale[c] = p.scale()[0];
            zp[c] = p.zeroPoint()[0];
        }
        return new QuantParams(grid, symmetric, axis, scale, zp);
    }

    private static TensorStats stats(String tensor, float[] values, Calibrator calibrator, boolean symmetric) {
        MinMaxStats mm = MinMaxStats.of(tensor, values);
        Optional<HistogramSpec> spec = calibrator.histogramSpec(mm, symmetric);
        return TensorStats.of(tensor, values, spec.orElse(null));
    }
}
