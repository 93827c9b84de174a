package io.quantcal.kernels.stats;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Counts of one tensor's values in the fixed bins of a {@link HistogramSpec}. Immutable: {@link #add} and
 * {@link #merge} return new histograms. Two histograms with the same spec merge by adding counts, which is exact,
 * associative and commutative, so partial histograms from any partitioning merge to the same result.
 */
public record Histogram(HistogramSpec spec, long[] counts) implements Serializable {

    public Histogram {
        if (counts.length != spec.bins()) {
            throw new IllegalArgumentException("histogram spec has " + spec.bins() + " bins but " + counts.length + " counts");
        }
        counts = counts.clone();
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] < 0) throw new IllegalArgumentException("histogram count of bin " + i + " is negative: " + counts[i]);
        }
    }

    public static Histogram empty(HistogramSpec spec) {
        return new Histogram(spec, new long[spec.bins()]);
    }

    /** This histogram with {@code values} added; see {@link #add(String, float[])}. */
    public Histogram add(float[] values) {
        return add(MinMaxStats.UNNAMED, values);
    }

    /**
     * This histogram with the values of {@code tensor} added; values outside [lo, hi] are counted in the end bins.
     *
     * @throws IllegalArgumentException naming the tensor when a value is NaN or infinite
     */
    public Histogram add(String tensor, float[] values) {
        long[] c = counts.clone();
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            if (!Float.isFinite(v)) throw MinMaxStats.nonFinite(tensor, v, i);
            c[spec.binOf(v)]++;
        }
        return new Histogram(spec, c);
    }

    /** Sum of both histograms' counts. */
    public Histogram merge(Histogram other) {
        if (!spec.equals(other.spec)) {
            throw new IllegalArgumentException("cannot merge histograms with different bins: " + spec + " and " + other.spec
                    + "; partial histograms must share the spec fixed by the min/max pass");
        }
        long[] c = counts.clone();
        for (int i = 0; i < c.length; i++) c[i] += other.counts[i];
        return new Histogram(spec, c);
    }

    /** A copy of the counts. */
    @Override
    public long[] counts() {
        return counts.clone();
    }

    public long count(int bin) {
        return counts[bin];
    }

    /** Number of values counted. */
    public long total() {
        long t = 0;
        for (long c : counts) t += c;
        return t;
    }

    /**
     * The value below which {@code fraction} of the counted values lie, taking each bin's values as spread
     * uniformly over the bin (linear interpolation of the cumulative count within the bin).
     */
    public double quantile(double fraction) {
        if (!(fraction >= 0 && fraction <= 1)) {
            throw new IllegalArgumentException("quantile fraction must be in [0, 1], got " + fraction);
        }
        long total = total();
        if (total == 0) throw new IllegalArgumentException("quantile of an empty histogram over " + spec);
        double target = fraction * total;
        long below = 0;
        for (int i = 0; i < counts.length; i++) {
            long c = counts[i];
            if (c > 0 && below + c >= target) {
                double within = Math.max(0, (target - below) / c);
                return Math.min(spec.edge(i + 1), spec.edge(i) + within * spec.binWidth());
            }
            below += c;
        }
        throw new IllegalStateException("unreachable: cumulative count never reached " + target + " of " + total);
    }

    /**
     * The histogram of |x| over [0, amax], by summing mirrored bins. Exact for a spec symmetric about zero with
     * an even bin count (its binning mirrors x and −x, see {@link HistogramSpec#binOf}); a spec [0, hi] is already
     * one of |x|; a spec [lo, 0] is reversed, exact except that a value lying exactly on a bin edge moves to the
     * neighbouring bin. Other specs have no bin edge at 0, so |x| cannot be recovered from their counts.
     */
    public Histogram foldAbs() {
        double lo = spec.lo(), hi = spec.hi();
        int n = spec.bins();
        if (lo == 0) return this;
        if (hi == 0) {
            long[] c = new long[n];
            for (int i = 0; i < n; i++) c[i] = counts[n - 1 - i];
            return new Histogram(new HistogramSpec(0, -lo, n), c);
        }
        if (spec.isSymmetric()) {
            int half = n / 2;
            long[] c = new long[half];
            for (int j = 0; j < half; j++) c[j] = counts[half + j] + counts[half - 1 - j];
            return new Histogram(new HistogramSpec(0, hi, half), c);
        }
        throw new IllegalArgumentException("a histogram over " + spec + " cannot be folded into |x| exactly: its range"
                + " must be symmetric about 0 with an even bin count (HistogramSpec.symmetric) or start or end at 0");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Histogram h && spec.equals(h.spec) && Arrays.equals(counts, h.counts);
    }

    @Override
    public int hashCode() {
        return 31 * spec.hashCode() + Arrays.hashCode(counts);
    }

    @Override
    public String toString() {
        return "Histogram[" + spec + ", total=" + total() + "]";
    }
}
