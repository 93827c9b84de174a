package io.quantcal.kernels.stats;

import java.io.Serializable;

/**
 * Everything calibration knows about one tensor: its min/max statistics and, when the calibrator needs one, a
 * histogram over regular bins ({@code histogram}, null otherwise) and the exponent-binned histogram it is re-binned
 * from ({@code values}, null when not measured). Merging is exact and order-free for the counts, min, max and both
 * histograms (see {@link MinMaxStats} for the sums).
 */
public record TensorStats(String tensor, MinMaxStats minMax, Histogram histogram, ExponentHistogram values)
        implements Serializable {

    public TensorStats {
        if (tensor == null || minMax == null) {
            throw new IllegalArgumentException("tensor statistics need a tensor name and min/max statistics, got "
                    + tensor + " and " + minMax);
        }
    }

    /** Min/max statistics and perhaps a regular histogram, no exponent-binned one. */
    public TensorStats(String tensor, MinMaxStats minMax, Histogram histogram) {
        this(tensor, minMax, histogram, null);
    }

    /**
     * The statistics one pass over the data gives a histogram calibrator: the exponent-binned histogram of the
     * values, with the exact count, min and max it tracks; {@link #withHistogram} then places the regular bins.
     */
    public static TensorStats of(String tensor, ExponentHistogram values) {
        return new TensorStats(tensor, values.minMax(), null, values);
    }

    /**
     * These statistics with the regular histogram over {@code spec} re-binned from the exponent-binned one
     * ({@link ExponentHistogram#toHistogram}).
     */
    public TensorStats withHistogram(HistogramSpec spec) {
        if (values == null) {
            throw new IllegalArgumentException("tensor " + tensor + ": no exponent-binned histogram to re-bin into " + spec);
        }
        return new TensorStats(tensor, minMax, values.toHistogram(spec), values);
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
        if (hasHistogram() != other.hasHistogram() || (values == null) != (other.values == null)) {
            throw new IllegalArgumentException("tensor " + tensor + ": cannot merge statistics with a histogram and"
                    + " statistics without one (the histogram would miss values the min/max counted)");
        }
        return new TensorStats(tensor, minMax.merge(other.minMax), hasHistogram() ? histogram.merge(other.histogram) : null,
                values == null ? null : values.merge(other.values));
    }
}
