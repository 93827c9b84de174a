package io.quantcal.kernels.stats;

import java.io.Serializable;

/**
 * The bins of a histogram: {@code bins} equal bins over [lo, hi]. The calibrate pass places them from the exact
 * min/max of its one pass over the data and fills them by re-binning the merged {@link ExponentHistogram}
 * ({@link ExponentHistogram#toHistogram}); histograms over one spec merge by adding counts.
 *
 * <p>Bin i holds lo + i·w ≤ x < lo + (i+1)·w with w = (hi − lo)/bins; the last bin also holds hi. Values outside
 * [lo, hi] are counted in the end bins, so a histogram's total is the number of values it saw.
 *
 * <p>A spec symmetric about zero (lo = −hi, even bin count) bins by |x| and sign, so that x and −x always land in
 * mirrored bins and folding to a histogram of |x| ({@link Histogram#foldAbs()}) is exact; the one difference is
 * that a negative value exactly on an edge goes to the bin below that edge, as its mirror image goes to the bin
 * above. Build it with {@link #symmetric(MinMaxStats)}.
 */
public record HistogramSpec(double lo, double hi, int bins) implements Serializable {

    /** Histogram resolution: TensorRT's entropy calibration uses 2048 bins of |x|. */
    public static final int DEFAULT_BINS = 2048;

    public HistogramSpec {
        if (!Double.isFinite(lo) || !Double.isFinite(hi) || !(lo < hi) || !Double.isFinite(hi - lo)) {
            throw new IllegalArgumentException("histogram range must be finite with lo < hi, got [" + lo + ", " + hi + "]");
        }
        if (bins < 1) {
            throw new IllegalArgumentException("histogram needs at least one bin, got " + bins);
        }
    }

    /** [−amax, amax] with 2·{@link #DEFAULT_BINS} bins: {@link #DEFAULT_BINS} bins of |x| after folding. */
    public static HistogramSpec symmetric(MinMaxStats firstPass) {
        return symmetric(firstPass, 2 * DEFAULT_BINS);
    }

    /**
     * [−amax, amax] with amax = max(|min|, |max|) of the first pass and an even number of bins. An all-zero
     * tensor (amax = 0) gets [−1, 1], a valid spec whose centre bins hold the zeros.
     */
    public static HistogramSpec symmetric(MinMaxStats firstPass, int bins) {
        requireValues(firstPass);
        if (bins < 2 || bins % 2 != 0) {
            throw new IllegalArgumentException("a symmetric histogram needs an even number of bins >= 2, got " + bins);
        }
        double amax = firstPass.absMax();
        if (!(amax >= Float.MIN_NORMAL)) amax = 1;
        return new HistogramSpec(-amax, amax, bins);
    }

    /** [min, max] widened to include 0, with {@link #DEFAULT_BINS} bins. */
    public static HistogramSpec range(MinMaxStats firstPass) {
        return range(firstPass, DEFAULT_BINS);
    }

    /**
     * [min(min, 0), max(max, 0)]: a quantization grid always contains 0 (AffineQuantizer.fromRange widens the
     * same way), so the histogram loses nothing by covering it, and a one-signed tensor gets a spec that starts or
     * ends at 0 and folds exactly. A degenerate range (all values 0) gets [−1, 1].
     */
    public static HistogramSpec range(MinMaxStats firstPass, int bins) {
        requireValues(firstPass);
        double lo = Math.min(firstPass.min(), 0), hi = Math.max(firstPass.max(), 0);
        if (!(hi - lo >= Float.MIN_NORMAL)) {
            lo = -1;
            hi = 1;
        }
        return new HistogramSpec(lo, hi, bins);
    }

    private static void requireValues(MinMaxStats firstPass) {
        if (firstPass.isEmpty()) {
            throw new IllegalArgumentException("cannot place histogram bins from a min/max pass that saw no values");
        }
    }

    /** Bin width w = (hi − lo)/bins. */
    public double binWidth() {
        return (hi - lo) / bins;
    }

    /** Edge i, 0 ≤ i ≤ bins: lo + i·w, exactly lo and hi at the ends. */
    public double edge(int i) {
        if (i == bins) return hi;
        return lo + (hi - lo) * i / bins;
    }

    /** Centre of bin i: lo + (i + ½)·w. */
    public double center(int i) {
        return lo + (hi - lo) * (i + 0.5) / bins;
    }

    /** Whether this spec is symmetric about zero with an even bin count, so it folds exactly into |x|. */
    public boolean isSymmetric() {
        return lo == -hi && bins % 2 == 0;
    }

    /** The bin x is counted in; values below lo or above hi go to the end bins. x must not be NaN. */
    public int binOf(double x) {
        if (isSymmetric()) {
            // |x| picks the distance from the centre and the sign the side, so that −x lands in the mirror bin of x
            int half = bins / 2;
            int k = (int) Math.min(half - 1, Math.floor(Math.abs(x) / hi * half));
            return x < 0 ? half - 1 - k : half + k;
        }
        double t = (x - lo) / (hi - lo) * bins;
        if (!(t > 0)) return 0;
        return (int) Math.min(bins - 1, Math.floor(t));
    }
}
