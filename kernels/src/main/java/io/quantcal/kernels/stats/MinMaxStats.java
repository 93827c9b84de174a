package io.quantcal.kernels.stats;

import java.io.Serializable;

/**
 * The first calibration pass over one tensor: count, min, max, sum and sum of squares of its values.
 *
 * <p>Merging is exact and order-free for count, min and max. The sums are doubles: {@code a.merge(b)} equals
 * {@code b.merge(a)} bit for bit (floating addition commutes), but regrouping merges can change their last bits,
 * so the job merges partial results in key order to get the same table whatever the partitioning.
 *
 * <p>An empty statistic ({@link #empty()}) has count 0, min +∞ and max −∞, the identity of {@link #merge}.
 */
public record MinMaxStats(long count, double min, double max, double sum, double sumOfSquares) implements Serializable {

    /** Name used in error messages when the caller gives none. */
    static final String UNNAMED = "<unnamed>";

    public MinMaxStats {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        if (count > 0 && !(min <= max)) {
            throw new IllegalArgumentException("min must be <= max for " + count + " values, got [" + min + ", " + max + "]");
        }
    }

    public static MinMaxStats empty() {
        return new MinMaxStats(0, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0, 0);
    }

    /** Statistics of {@code values}; see {@link #of(String, float[])}. */
    public static MinMaxStats of(float[] values) {
        return of(UNNAMED, values);
    }

    /**
     * Statistics of {@code values}, the values of {@code tensor}.
     *
     * @throws IllegalArgumentException naming the tensor when a value is NaN or infinite: a range or histogram of
     *     such a tensor means nothing, and the caller decides whether to skip the batch or fail the run
     */
    public static MinMaxStats of(String tensor, float[] values) {
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY, sum = 0, sumSq = 0;
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            if (!Float.isFinite(v)) throw nonFinite(tensor, v, i);
            if (v < min) min = v;
            if (v > max) max = v;
            sum += v;
            sumSq += (double) v * v;
        }
        return new MinMaxStats(values.length, min, max, sum, sumSq);
    }

    static IllegalArgumentException nonFinite(String tensor, float v, int index) {
        return new IllegalArgumentException("tensor " + tensor + ": value " + v + " at index " + index
                + " is not finite; calibration statistics need finite values");
    }

    /** The statistics of both value sets together; neither operand changes. */
    public MinMaxStats merge(MinMaxStats other) {
        return new MinMaxStats(count + other.count, Math.min(min, other.min), Math.max(max, other.max),
                sum + other.sum, sumOfSquares + other.sumOfSquares);
    }

    public boolean isEmpty() {
        return count == 0;
    }

    /** max(|min|, |max|): the clip that a symmetric grid needs to cover every value (0 when empty). */
    public double absMax() {
        return isEmpty() ? 0 : Math.max(Math.abs(min), Math.abs(max));
    }

    public double mean() {
        return isEmpty() ? Double.NaN : sum / count;
    }

    /** Population variance E[x²] − E[x]², clamped at 0 against rounding. */
    public double variance() {
        if (isEmpty()) return Double.NaN;
        double m = mean();
        return Math.max(0, sumOfSquares / count - m * m);
    }
}
