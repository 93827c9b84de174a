package io.quantcal.kernels.stats;

import java.io.Serializable;
import java.util.Arrays;

/**
 * A histogram of float32 values whose bin edges do not depend on the data, so that partial histograms from any
 * partitioning merge exactly by adding counts, in one pass over the data (no min/max pass to place the bins first).
 *
 * <p>As in HDR histograms, a value's bin is fixed by its IEEE-754 bits: for |x| the 8 exponent bits and the top
 * {@link #SUB_BITS} mantissa bits, i.e. the key {@code (floatToRawIntBits(x) & 0x7FFFFFFF) >>> (23 − SUB_BITS)}, and
 * the sign picks one of two such sets of bins. Bin k of |x| is [edge(k), edge(k+1)) with
 * edge(k) = intBitsToFloat(k << (23 − SUB_BITS)): every power-of-two octave [2^e, 2^(e+1)) is cut into
 * 2^SUB_BITS equal bins (relative width at most 2^−SUB_BITS, 1/1024), subnormals into bins of the same width as the
 * lowest normal octave's. Zeros (±0) are counted exactly, apart from every bin. Alongside, the exact min and max
 * (−0 counts as +0) and the number of values.
 *
 * <p>NaN and ±∞ are refused naming the tensor, as {@link MinMaxStats#of(String, float[])} refuses them.
 *
 * <p>Immutable; {@link Accumulator} is the mutable form a task fills (a branch-free loop over the raw bits) before
 * it {@link Accumulator#finish() finishes} into this compact form (only the span of bins that hold values).
 * {@link #toHistogram} re-bins into the regular bins of a {@link HistogramSpec}, which the calibrators read.
 */
public final class ExponentHistogram implements Serializable {

    private static final long serialVersionUID = 1L;

    /** Mantissa bits that split each octave: 2^10 bins per octave. */
    public static final int SUB_BITS = 10;

    private static final int SHIFT = 23 - SUB_BITS;

    /** Keys of |x| per sign: 2^(8 + SUB_BITS) (the top octave's keys are ∞ and NaN, never counted). */
    public static final int KEYS = 1 << (8 + SUB_BITS);

    /** Sortable ints (see {@link #sortable}) of the largest finite floats of each sign. */
    private static final int MAX_FINITE = sortable(Float.floatToRawIntBits(Float.MAX_VALUE));
    private static final int MIN_FINITE = sortable(Float.floatToRawIntBits(-Float.MAX_VALUE));

    private final long count;
    private final long zeros;
    private final float min;
    private final float max;
    /** Counts of negative values with |x| in bins negFrom, negFrom + 1, ...; likewise for positive values. */
    private final int negFrom;
    private final long[] neg;
    private final int posFrom;
    private final long[] pos;

    private ExponentHistogram(long count, long zeros, float min, float max, int negFrom, long[] neg, int posFrom, long[] pos) {
        this.count = count;
        this.zeros = zeros;
        this.min = min;
        this.max = max;
        this.negFrom = negFrom;
        this.neg = neg;
        this.posFrom = posFrom;
        this.pos = pos;
    }

    /** The histogram of no values: the identity of {@link #merge}. */
    public static ExponentHistogram empty() {
        return new ExponentHistogram(0, 0, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0, new long[0], 0, new long[0]);
    }

    /**
     * The histogram of {@code values}, the values of {@code tensor}.
     *
     * @throws IllegalArgumentException naming the tensor and the index when a value is NaN or infinite
     */
    public static ExponentHistogram of(String tensor, float[] values) {
        Accumulator a = new Accumulator();
        a.add(tensor, values);
        return a.finish();
    }

    /** The key of |x|: its exponent and top {@link #SUB_BITS} mantissa bits. The bin of x is (sign of x, key). */
    public static int key(float x) {
        return (Float.floatToRawIntBits(x) & 0x7FFFFFFF) >>> SHIFT;
    }

    /** The lower edge of |x| bin {@code key}: the smallest float whose key it is. */
    public static double edge(int key) {
        if (key < 0 || key > KEYS) throw new IllegalArgumentException("no bin edge " + key + " (keys 0.." + KEYS + ")");
        return key == KEYS ? Double.POSITIVE_INFINITY : Float.intBitsToFloat(key << SHIFT);
    }

    /**
     * An int whose signed order is the order of the floats with these bits (−0 just below +0; NaNs outside ±∞):
     * the magnitude bits for positive floats, their two's complement-like mirror for negative ones.
     */
    static int sortable(int bits) {
        return bits ^ ((bits >> 31) & 0x7FFFFFFF);
    }

    private static float fromSortable(int s) {
        return Float.intBitsToFloat(s ^ ((s >> 31) & 0x7FFFFFFF));
    }

    /** Number of values counted, zeros included. */
    public long count() {
        return count;
    }

    /** Number of values equal to 0 (either sign). */
    public long zeros() {
        return zeros;
    }

    public boolean isEmpty() {
        return count == 0;
    }

    /** The smallest value (exact; +∞ when empty). */
    public float min() {
        return min;
    }

    /** The largest value (exact; −∞ when empty). */
    public float max() {
        return max;
    }

    /** Number of values x with x &lt; 0 (x &gt; 0 when {@code negative} is false) in |x| bin {@code key}. */
    public long count(boolean negative, int key) {
        int from = negative ? negFrom : posFrom;
        long[] c = negative ? neg : pos;
        int i = key - from;
        return i >= 0 && i < c.length ? c[i] : 0;
    }

    /** Count, exact min and max; the sums are not measured (NaN), as no calibrator reads them. */
    public MinMaxStats minMax() {
        if (isEmpty()) return MinMaxStats.empty();
        return new MinMaxStats(count, min, max, Double.NaN, Double.NaN);
    }

    /** The histogram of both value sets: counts added, min of the mins, max of the maxes. Exact and order-free. */
    public ExponentHistogram merge(ExponentHistogram other) {
        if (other.isEmpty()) return this;
        if (isEmpty()) return other;
        long[][] n = new long[1][], p = new long[1][];
        int nf = add(negFrom, neg, other.negFrom, other.neg, n);
        int pf = add(posFrom, pos, other.posFrom, other.pos, p);
        return new ExponentHistogram(count + other.count, zeros + other.zeros, Math.min(min, other.min),
                Math.max(max, other.max), nf, n[0], pf, p[0]);
    }

    /** The sum of counts a (from aFrom) and b (from bFrom) into sum[0]; returns its first key. */
    private static int add(int aFrom, long[] a, int bFrom, long[] b, long[][] sum) {
        if (b.length == 0) {
            sum[0] = a;
            return aFrom;
        }
        if (a.length == 0) {
            sum[0] = b;
            return bFrom;
        }
        int from = Math.min(aFrom, bFrom), to = Math.max(aFrom + a.length, bFrom + b.length);
        long[] c = new long[to - from];
        for (int i = 0; i < a.length; i++) c[aFrom - from + i] += a[i];
        for (int i = 0; i < b.length; i++) c[bFrom - from + i] += b[i];
        sum[0] = c;
        return from;
    }

    /**
     * These values re-binned into the regular bins of {@code spec}: zeros go to the bin of 0 exactly; the values of
     * each exponent bin are taken as spread uniformly over the part of the bin inside [min, max] (as
     * {@link Histogram#quantile} takes them within its own bins), and each regular bin gets the difference of the
     * rounded cumulative counts at its edges, so counts stay integers and the total is exact. Values outside
     * [lo, hi] go to the end bins, as {@link HistogramSpec#binOf} puts them.
     */
    public Histogram toHistogram(HistogramSpec spec) {
        int n = spec.bins();
        long[] out = new long[n];
        if (isEmpty()) return new Histogram(spec, out);
        // the non-zero values as segments [a, b] of the real line in increasing order, each with its count
        int segs = neg.length + pos.length;
        double[] a = new double[segs], b = new double[segs];
        long[] c = new long[segs];
        int s = 0;
        for (int i = neg.length - 1; i >= 0; i--) {
            if (neg[i] == 0) continue;
            int k = negFrom + i;
            a[s] = Math.max(min, -edge(k + 1));
            b[s] = Math.min(max, -edge(k));
            c[s++] = neg[i];
        }
        for (int i = 0; i < pos.length; i++) {
            if (pos[i] == 0) continue;
            int k = posFrom + i;
            a[s] = Math.max(min, edge(k));
            b[s] = Math.min(max, edge(k + 1));
            c[s++] = pos[i];
        }
        // cumulative count of the non-zero values below each inner edge of the spec, rounded; one sweep
        long[] below = new long[n + 1];
        below[n] = count - zeros;
        double done = 0; // count of the segments wholly below the current edge
        int j = 0;
        for (int e = 1; e < n; e++) {
            double x = spec.edge(e);
            while (j < s && b[j] <= x) done += c[j++];
            double f = done;
            if (j < s && a[j] < x) f += c[j] * (x - a[j]) / (b[j] - a[j]);
            below[e] = Math.round(f);
        }
        for (int e = 1; e <= n; e++) below[e] = Math.max(below[e], below[e - 1]);
        for (int i = 0; i < n; i++) out[i] = below[i + 1] - below[i];
        if (zeros > 0) out[spec.binOf(0)] += zeros;
        return new Histogram(spec, out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExponentHistogram h && count == h.count && zeros == h.zeros
                && Float.compare(min, h.min) == 0 && Float.compare(max, h.max) == 0
                && negFrom == h.negFrom && Arrays.equals(neg, h.neg) && posFrom == h.posFrom && Arrays.equals(pos, h.pos);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(count) * 31 + Arrays.hashCode(neg) * 17 + Arrays.hashCode(pos);
    }

    @Override
    public String toString() {
        return "ExponentHistogram[count=" + count + ", zeros=" + zeros + ", min=" + min + ", max=" + max + "]";
    }

    /**
     * The mutable histogram one task fills, batch after batch: dense counts over every key of both signs, indexed
     * straight from the raw bits with no branch per value. Not thread-safe.
     */
    public static final class Accumulator {

        /** Zeros are counted in these slots past the bins, round robin, so that a run of zeros does not make each
         *  increment wait for the previous one's store to the same slot. */
        private static final int ZERO_SLOTS = 8;

        /** Counts since the last flush: ints halve the memory a task's loop touches; no slot can pass 2^31 − 1
         *  between flushes, since a flush comes before the values added since the last one would. */
        private final int[] recent = new int[2 * KEYS + ZERO_SLOTS];
        private long[] flushed;
        private long sinceFlush;
        private long count;
        private int lo = Integer.MAX_VALUE;
        private int hi = Integer.MIN_VALUE;

        /**
         * Adds {@code values}, the values of {@code tensor}.
         *
         * @throws IllegalArgumentException naming the tensor and the index when a value is NaN or infinite; this
         *     accumulator then holds none of {@code values}
         */
        public void add(String tensor, float[] values) {
            if (sinceFlush + values.length > Integer.MAX_VALUE) flush();
            int[] c = recent;
            int min = Integer.MAX_VALUE, max = Integer.MIN_VALUE;
            for (int i = 0; i < values.length; i++) {
                int bits = Float.floatToRawIntBits(values[i]);
                int mag = bits & 0x7FFFFFFF;
                int zero = (mag - 1) >> 31; // −1 for ±0, else 0
                bits &= ~zero; // −0 → +0
                min = Math.min(min, bits ^ ((bits >> 31) & 0x7FFFFFFF));
                max = Math.max(max, bits ^ ((bits >> 31) & 0x7FFFFFFF));
                c[bin(bits, mag, zero, i)]++;
            }
            if (values.length > 0 && (max > MAX_FINITE || min < MIN_FINITE)) {
                // NaN or ±∞ among the values: take them out again, then name the first
                for (int i = 0; i < values.length; i++) {
                    int bits = Float.floatToRawIntBits(values[i]);
                    int mag = bits & 0x7FFFFFFF;
                    int zero = (mag - 1) >> 31;
                    c[bin(bits & ~zero, mag, zero, i)]--;
                }
                for (int i = 0; i < values.length; i++) {
                    if (!Float.isFinite(values[i])) throw MinMaxStats.nonFinite(tensor, values[i], i);
                }
            }
            lo = Math.min(lo, min);
            hi = Math.max(hi, max);
            count += values.length;
            sinceFlush += values.length;
        }

        /** sign · KEYS + key of a non-zero value, a zero slot (round robin by index) for ±0; no branch. */
        private static int bin(int bits, int mag, int zero, int i) {
            return ((bits >>> 31) << (8 + SUB_BITS) | mag >>> SHIFT) & ~zero | (2 * KEYS + (i & (ZERO_SLOTS - 1))) & zero;
        }

        private void flush() {
            if (flushed == null) flushed = new long[recent.length];
            for (int i = 0; i < recent.length; i++) flushed[i] += recent[i];
            Arrays.fill(recent, 0);
            sinceFlush = 0;
        }

        /** Number of values added so far. */
        public long count() {
            return count;
        }

        /** The values added so far, in compact form. */
        public ExponentHistogram finish() {
            if (count == 0) return empty();
            long[] all = new long[recent.length];
            for (int i = 0; i < all.length; i++) all[i] = recent[i] + (flushed == null ? 0 : flushed[i]);
            long zeros = 0;
            for (int z = 0; z < ZERO_SLOTS; z++) zeros += all[2 * KEYS + z];
            int[] nr = nonZero(all, KEYS), pr = nonZero(all, 0);
            long[] neg = Arrays.copyOfRange(all, KEYS + nr[0], KEYS + nr[1]);
            long[] pos = Arrays.copyOfRange(all, pr[0], pr[1]);
            return new ExponentHistogram(count, zeros, fromSortable(lo) + 0.0f, fromSortable(hi) + 0.0f,
                    nr[0], neg, pr[0], pos);
        }

        /** [first, last + 1) of the keys with a count among the KEYS bins from {@code base}, or [0, 0). */
        private static int[] nonZero(long[] all, int base) {
            int first = 0;
            while (first < KEYS && all[base + first] == 0) first++;
            if (first == KEYS) return new int[] {0, 0};
            int last = KEYS - 1;
            while (all[base + last] == 0) last--;
            return new int[] {first, last + 1};
        }
    }
}
