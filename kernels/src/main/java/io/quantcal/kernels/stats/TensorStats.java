package io.quantcal.kernels.stats;

import java.io.Serializable;

/**
 * Everything calibration knows about one tensor: its min/max statistics and, when the calibrator needs one, a
 * histogram over bins fixed by an earlier min/max pass ({@code histogram} is null otherwise). Merging is exact and
 * order-free for the counts, min, max and histogram (see {@link MinMaxStats} for the sums).
 */
public record TensorStats(String tensor, MinMaxStats minMax, Histogram histogram) implements Serializable {

    public TensorStats {
        if (tensor == null || minMax == null) {
            throw new IllegalArgumentException("tensor statistics need a tensor name and min/max statistics, got "
                    + tensor + " and " + minMax);
        }
    }

    /** Min/max statistics only. */
    public static TensorStats of(String tensor, float[] values) {
        return new TensorStats(tensor, MinMaxStats.of(tensor, values), null);
    }

    /** Min/max statistics and, when {@code spec} is not null, a histogram over it. */
    public static TensorStats of(String tensor, float[] values, HistogramSpec spec) {
        Histogram h = spec == null ? null : Histogram.empty(spec).add(tensor, values);
        return new TensorStats(tensor, MinMaxStats.of(tensor, values), h);
    }

    public boolean hasHistogram() {
        return histogram != null;
    }

    /** The min/max statistics, or an IllegalArgumentException naming the tensor and who needed values. */
    public MinMaxStats requireValues(String needer) {
        if (minMax.isEmpty()) {
            throw new IllegalArgumentException("tensor " + tensor + ": " + needer + " needs values, but the statistics saw none");
        }
        return minMax;
    }

    /** The histogram, or an IllegalArgumentException naming the tensor and who needed it. */
    public Histogram requireHistogram(String needer) {
        if (histogram == null) {
            throw new IllegalArgumentException("tensor " + tensor + ": " + needer + " needs a histogram, but the "
                    + "statistics have none; collect one over Calibrator.histogramSpec(...)");
        }
        return histogram;
    }

    /** Statistics of both parts together. Both must be of the same tensor, both with or both without histogram. */
    public TensorStats merge(TensorStats other) {
        if (!tensor.equals(other.tensor)) {
            throw new IllegalArgumentException("cannot merge statistics of tensor " + tensor + " with those of " + other.tensor);
        }
        if (hasHistogram() != other.hasHistogram()) {
            throw new IllegalArgumentException("tensor " + tensor + ": cannot merge statistics with a histogram and"
                    + " statistics without one (the histogram would miss values the min/max counted)");
        }
        return new TensorStats(tensor, minMax.merge(other.minMax), hasHistogram() ? histogram.merge(other.histogram) : null);
    }
}
