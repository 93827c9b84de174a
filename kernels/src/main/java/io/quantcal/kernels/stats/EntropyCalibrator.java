package io.quantcal.kernels.stats;

import io.quantcal.kernels.quant.QuantGrid;
import java.util.Optional;

/**
 * TensorRT's entropy calibration ("EntropyCalibration2"; Migacz, "8-bit Inference with TensorRT", GTC 2017, and
 * NVIDIA's reference implementation in pytorch-quantization, {@code calib/histogram.py}): the threshold T on |x|
 * whose quantized distribution loses the least information, measured by KL(P‖Q) over a histogram of |x|.
 *
 * <p>Levels: 2^(bits−1) for signed grids (128 at 8 bits: the magnitudes of one sign), 2^bits for unsigned grids.
 * With at least as many levels as |x| bins there is nothing to merge and T is the maximum.
 *
 * <p>Affine grids: the search runs on |x| as for symmetric ones, and the range is [max(min, −T), min(max, T)]:
 * each side is clipped at T only where the data reach past it.
 *
 * <p>{@code flattenZeroBin}: before the search, give the |x| bin that holds 0 the count of its neighbour, as
 * pytorch-quantization does ({@code bins[0] = bins[1]}). Exact zeros (half of a ReLU output) quantize without error,
 * but Q spreads the mass of their level over the whole level, so a spike of zeros weighs on every candidate and
 * pulls T down (a ReLU'd N(0,1) at 8 bits: about 2σ without, 4.3σ with). Off, the search is the algorithm as published.
 */
public record EntropyCalibrator(boolean flattenZeroBin) implements Calibrator {

    /** With {@code flattenZeroBin}, the behaviour of NVIDIA's reference implementation. */
    public EntropyCalibrator() {
        this(true);
    }

    @Override
    public boolean needsHistogram() {
        return true;
    }

    @Override
    public String name() {
        return "entropy";
    }

    @Override
    public Range calibrate(TensorStats stats, QuantGrid grid, boolean symmetric) {
        MinMaxStats m = stats.requireValues(name());
        // the histogram of |x| (2048 bins with the default symmetric spec), folded from the signed histogram
        Histogram abs = stats.requireHistogram(name()).foldAbs();
        double[] counts = new double[abs.spec().bins()];
        for (int i = 0; i < counts.length; i++) counts[i] = abs.count(i);
        // pytorch-quantization's bins[0] = bins[1]; not when bin 0 holds every value (an all-zero tensor),
        // which would leave nothing to calibrate on
        if (flattenZeroBin && counts.length > 1 && abs.total() > counts[0]) counts[0] = counts[1];
        int levels = levels(grid);
        // threshold T = the upper edge of the last bin kept, i bin widths (pytorch-quantization: calib_bin_edges[i])
        double t = levels >= counts.length ? abs.spec().hi() : abs.spec().edge(bestBinCount(counts, levels));
        t = Math.min(t, m.absMax());
        if (symmetric) return Range.symmetric(t);
        return new Range(Math.max(m.min(), -t), Math.min(m.max(), t));
    }

    /** Always bins symmetric about 0, so that the |x| histogram is exact, also for affine grids. */
    @Override
    public Optional<HistogramSpec> histogramSpec(MinMaxStats firstPass, boolean symmetric) {
        return Optional.of(HistogramSpec.symmetric(firstPass));
    }

    /** Quantization levels of |x|: 2^(bits−1) signed (128 at 8 bits, as TensorRT), 2^bits unsigned. */
    static int levels(QuantGrid grid) {
        return 1 << (grid.signed() ? grid.bits() - 1 : grid.bits());
    }

    /**
     * The number of |x| bins i in [levels, n] whose threshold (upper edge of bin i − 1, i.e. i bin widths) has
     * the least KL(P‖Q); on equal divergence the largest i, as pytorch-quantization's "last argmin".
     */
    static int bestBinCount(double[] counts, int levels) {
        double[] kl = divergences(counts, levels);
        int best = 0;
        for (int k = 1; k < kl.length; k++) {
            if (kl[k] <= kl[best]) best = k;
        }
        return levels + best;
    }

    /**
     * KL(P_i‖Q_i) for each candidate bin count i = levels, levels + 1, ..., n (entry i − levels), where n is the
     * number of |x| bins:
     * <ol>
     * <li>P_i = counts[0..i−1] with the outliers Σ counts[i..n−1] added to its last bin ("reference distribution");
     * <li>Q_i = counts[0..i−1] merged into {@code levels} levels, bin j going to level ⌊j·levels/i⌋, each level's
     *     mass spread uniformly over its non-empty bins and empty bins left empty ("candidate distribution",
     *     quantized and expanded back to i bins);
     * <li>both normalized, KL = Σ_j P_j ln(P_j/Q_j) over P_j > 0, +∞ where Q_j = 0 < P_j (the last bin when it
     *     is empty but outliers exist).
     * </ol>
     */
    static double[] divergences(double[] counts, int levels) {
        int n = counts.length;
        if (levels < 1 || levels > n) {
            throw new IllegalArgumentException("entropy calibration needs 1 <= levels <= bins, got " + levels + " levels for " + n + " bins");
        }
        double[] suffix = new double[n + 1];
        for (int j = n - 1; j >= 0; j--) suffix[j] = suffix[j + 1] + counts[j];
        double total = suffix[0];
        if (!(total > 0)) throw new IllegalArgumentException("entropy calibration of an empty histogram");
        double[] kl = new double[n - levels + 1];
        double[] q = new double[n];
        for (int i = levels; i <= n; i++) {
            // step 2: Q, level by level; level l holds bins j with l·i ≤ j·levels < (l+1)·i
            double qTotal = 0;
            for (int l = 0; l < levels; l++) {
                int from = ceilDiv((long) l * i, levels), to = ceilDiv((long) (l + 1) * i, levels);
                double mass = 0;
                int nonEmpty = 0;
                for (int j = from; j < to; j++) {
                    if (counts[j] != 0) {
                        mass += counts[j];
                        nonEmpty++;
                    }
                }
                for (int j = from; j < to; j++) q[j] = counts[j] != 0 ? mass / nonEmpty : 0;
                qTotal += mass;
            }
            // steps 1 and 3: P with the outliers in its last bin, both normalized; P sums to the total count
            double d = 0;
            for (int j = 0; j < i; j++) {
                double p = (j == i - 1 ? counts[j] + suffix[i] : counts[j]) / total;
                if (p == 0) continue;
                if (q[j] == 0) {
                    d = Double.POSITIVE_INFINITY;
                    break;
                }
                d += p * Math.log(p / (q[j] / qTotal));
            }
            kl[i - levels] = d;
        }
        return kl;
    }

    private static int ceilDiv(long a, int b) {
        return (int) ((a + b - 1) / b);
    }
}
