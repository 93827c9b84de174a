package io.quantcal.kernels.stats;

import java.io.Serializable;
import java.util.Arrays;

/**
 * A histogram of float32 values whose bin edges do not depend on the data, so that partial histograms from any
 * partitioning merge exactly by adding counts, in one pass over the data (no min/max pass to place the bins first).
 *
 * <p>As in HDR histograms, a value's bin is fixed by its IEEE-754 bits: the 8 exponent bits and the top
 * {@link #SUB_BITS} mantissa bits of |x| and the sign. With m the raw bits of |x| and the edges
 * edge(k) = intBitsToFloat(k · 2^(23 − SUB_BITS)), bin k &gt; 0 holds edge(k − 1) &lt; |x| ≤ edge(k) of positive x,
 * bin −k the same magnitudes of negative x, and bin 0 the zeros (±0) exactly: k = ⌈m / 2^(23 − SUB_BITS)⌉, which is
 * 0 only for m = 0. Every power-of-two octave is cut into 2^SUB_BITS equal bins (relative width at most 2^−SUB_BITS,
 * 1/1024), subnormals into bins as wide as the lowest normal octave's. Bins are numbered in the order of the values
 * they hold. Alongside, the exact min and max (−0 counts as +0) and the number of values.
 *
 * <p>NaN and ±∞ are refused naming the tensor and the index, as {@link MinMaxStats#of(String, float[])} refuses them.
 *
 * <p>Immutable; {@link Accumulator} is the mutable form a task fills before it {@link Accumulator#finish() finishes}
 * into this compact form: only the bins that hold values, each with its count. (A span from the lowest to the highest
 * bin would be about 131 000 bins on a ReLU output whose smallest values are subnormal, 1 MB per tensor a task sends
 * to the driver, against about 9 000 bins that hold values.) {@link #toHistogram} re-bins into the regular
 * bins of a {@link HistogramSpec}, which the calibrators read.
 */
public final class ExponentHistogram implements Serializable {

    private static final long serialVersionUID = 3L;

    /** Mantissa bits that split each octave: 2^10 bins per octave. */
    public static final int SUB_BITS = 10;

    private static final int SHIFT = 23 - SUB_BITS;
    private static final int ROUND_UP = (1 << SHIFT) - 1;

    /**
     * Bins of each sign: bin numbers run from −KEYS to KEYS. The largest finite magnitude is in bin
     * 255 · 2^SUB_BITS; the bins above it hold only NaNs, which are never counted.
     */
    public static final int KEYS = 1 << (8 + SUB_BITS);

    /** Sortable ints (see {@link #sortable}) of the largest finite floats of each sign. */
    private static final int MAX_FINITE = sortable(Float.floatToRawIntBits(Float.MAX_VALUE));
    private static final int MIN_FINITE = sortable(Float.floatToRawIntBits(-Float.MAX_VALUE));

    private final long count;
    private final float min;
    private final float max;
    /** The bins that hold values, in increasing order, and their counts (none 0). */
    private final int[] bins;
    private final long[] counts;

    private ExponentHistogram(long count, float min, float max, int[] bins, long[] counts) {
        this.count = count;
        this.min = min;
        this.max = max;
        this.bins = bins;
        this.counts = counts;
    }

    /** The histogram of no values: the identity of {@link #merge}. */
    public static ExponentHistogram empty() {
        return new ExponentHistogram(0, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, new int[0], new long[0]);
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

    /** The bin of x: 0 for ±0, k &gt; 0 when edge(k − 1) &lt; x ≤ edge(k), −k when edge(k − 1) &lt; −x ≤ edge(k). */
    public static int bin(float x) {
        int bits = Float.floatToRawIntBits(x);
        int sign = bits >> 31;
        int k = ((bits & 0x7FFFFFFF) + ROUND_UP) >>> SHIFT;
        return (k ^ sign) - sign;
    }

    /** Magnitude edge k, 0 ≤ k ≤ KEYS: the largest |x| of bin k (+∞ for the bins past the finite floats). */
    public static double edge(int k) {
        if (k < 0 || k > KEYS) throw new IllegalArgumentException("no bin edge " + k + " (edges 0.." + KEYS + ")");
        return k >= 255 << SUB_BITS ? Double.POSITIVE_INFINITY : Float.intBitsToFloat(k << SHIFT);
    }

    /** The smallest value bin b can hold (exclusive for b &gt; 0): edge(b − 1), −edge(−b), or 0. */
    public static double lower(int b) {
        return b > 0 ? edge(b - 1) : b < 0 ? -edge(-b) : 0;
    }

    /** The largest value bin b can hold (exclusive for b &lt; 0): edge(b), −edge(−b − 1), or 0. */
    public static double upper(int b) {
        return b > 0 ? edge(b) : b < 0 ? -edge(-b - 1) : 0;
    }

    /**
     * An int whose signed order is the order of the floats with these bits (−0 just below +0; NaNs outside ±∞).
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

    /** Number of values equal to 0 (either sign): the count of bin 0. */
    public long zeros() {
        return count(0);
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

    /** Number of values in bin {@code b} (see {@link #bin}). */
    public long count(int b) {
        int i = Arrays.binarySearch(bins, b);
        return i >= 0 ? counts[i] : 0;
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
        int[] ob = other.bins;
        long[] oc = other.counts;
        int[] b = new int[bins.length + ob.length];
        long[] c = new long[b.length];
        int i = 0, j = 0, k = 0;
        while (i < bins.length || j < ob.length) {
            if (j == ob.length || (i < bins.length && bins[i] < ob[j])) {
                b[k] = bins[i];
                c[k++] = counts[i++];
            } else if (i == bins.length || ob[j] < bins[i]) {
                b[k] = ob[j];
                c[k++] = oc[j++];
            } else {
                b[k] = bins[i];
                c[k++] = counts[i++] + oc[j++];
            }
        }
        return new ExponentHistogram(count + other.count, Math.min(min, other.min), Math.max(max, other.max),
                Arrays.copyOf(b, k), Arrays.copyOf(c, k));
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
        double[] a = new double[counts.length], b = new double[counts.length];
        long[] c = new long[counts.length];
        int s = 0;
        for (int i = 0; i < counts.length; i++) {
            int bin = bins[i];
            if (bin == 0) continue;
            a[s] = Math.max(min, lower(bin));
            b[s] = Math.min(max, upper(bin));
            c[s++] = counts[i];
        }
        // cumulative count of the non-zero values below each inner edge of the spec, rounded; one sweep
        long[] below = new long[n + 1];
        below[n] = count - zeros();
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
        if (zeros() > 0) out[spec.binOf(0)] += zeros();
        return new Histogram(spec, out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExponentHistogram h && count == h.count && Float.compare(min, h.min) == 0
                && Float.compare(max, h.max) == 0 && Arrays.equals(bins, h.bins) && Arrays.equals(counts, h.counts);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(count) * 31 + Arrays.hashCode(counts);
    }

    @Override
    public String toString() {
        return "ExponentHistogram[count=" + count + ", zeros=" + zeros() + ", min=" + min + ", max=" + max + "]";
    }

    /**
     * The mutable histogram one task fills, batch after batch. Not thread-safe.
     *
     * <p>Counted in three loops over chunks small enough for the first-level cache, each one the compiler turns into
     * vector code or a loop without a dependency through memory (measured on ReLU outputs, half of them zeros: 1.8 ns
     * per value with one fused scalar loop, about 0.5 with these):
     * <ul>
     *   <li>each value's slot, straight from its raw bits: ⌈bits / 2^(23 − SUB_BITS)⌉ is bin k for x &gt; 0 and
     *       KEYS + k for x &lt; 0 (the sign bit is the top bit), and zeros (either sign) go to one of
     *       {@link #SPARES} spare slots in turn, so that the zeros of a ReLU output, often half its values, do not
     *       make every increment wait for the one before; in the same loop, a count of the values whose exponent is
     *       all ones (NaN, ±∞);</li>
     *   <li>the increments of the slots;</li>
     *   <li>min and max kept per lane by a {@link MinMaxAccumulator} (one lane per chunk position, folded at
     *       {@link #finish}): a reduction into one variable would chain every value to the one before.</li>
     * </ul>
     */
    public static final class Accumulator {

        /** Values per chunk, and lanes of the running min and max. */
        static final int CHUNK = MinMaxAccumulator.LANES;
        /** Spare slots the zeros are spread over. */
        static final int SPARES = 16;
        private static final int ZEROS = 2 * KEYS;
        /**
         * ZEROS + (i mod SPARES): the slot of a zero at chunk position i, read from an array because the JIT does not
         * vectorize a loop that computes from its index.
         */
        private static final int[] ZERO_SLOT = new int[CHUNK];

        static {
            for (int i = 0; i < CHUNK; i++) ZERO_SLOT[i] = ZEROS + (i & (SPARES - 1));
        }

        /**
         * Counts since the last flush, by slot: ints halve the memory a task's loop touches (2 MiB per tensor); no
         * slot can pass 2^31 − 1 between flushes, since a flush comes before the values added since the last one
         * would.
         */
        private final int[] recent = new int[2 * KEYS + SPARES];
        private long[] flushed;
        private long sinceFlush;
        /** Count, min and max, in lanes ({@link MinMaxAccumulator}). */
        private final MinMaxAccumulator range = new MinMaxAccumulator();
        private final int[] bits = new int[CHUNK], slots = new int[CHUNK];
        private final float[] floats = new float[CHUNK];

        /**
         * Adds {@code values}, the values of {@code tensor}.
         *
         * @throws IllegalArgumentException naming the tensor and the index when a value is NaN or infinite; this
         *     accumulator then holds none of {@code values}
         */
        public void add(String tensor, float[] values) {
            add(tensor, values.length, new Source() {
                @Override
                public void read(int from, int len) {
                    System.arraycopy(values, from, floats, 0, len);
                    for (int i = 0; i < len; i++) bits[i] = Float.floatToRawIntBits(floats[i]);
                }

                @Override
                public float value(int i) {
                    return values[i];
                }
            });
        }

        /**
         * Adds the float32 values (native byte order) of {@code values} from its position to its limit (which it leaves
         * in place), the values of {@code tensor}: what ONNX Runtime wrote into a pinned output buffer, read in place
         * in chunks, as floats and as their raw bits.
         *
         * @throws IllegalArgumentException naming the tensor and the index when a value is NaN or infinite; this
         *     accumulator then holds none of {@code values}
         */
        public void add(String tensor, java.nio.ByteBuffer values) {
            java.nio.ByteBuffer v = values.duplicate().order(java.nio.ByteOrder.nativeOrder());
            java.nio.FloatBuffer asFloats = v.asFloatBuffer();
            java.nio.IntBuffer asInts = v.asIntBuffer();
            add(tensor, asFloats.remaining(), new Source() {
                @Override
                public void read(int from, int len) {
                    asInts.get(from, bits, 0, len);
                    asFloats.get(from, floats, 0, len);
                }

                @Override
                public float value(int i) {
                    return asFloats.get(i);
                }
            });
        }

        /** Where one call's values come from. */
        private interface Source {
            /** Values [from, from + len) into {@link #floats} and their raw bits into {@link #bits}. */
            void read(int from, int len);

            float value(int i);
        }

        /**
         * Adds the n values of {@code src} chunk by chunk; when one is NaN or infinite, takes out what the call added
         * (min and max are the call's own until it ends) and names the first such value.
         */
        private void add(String tensor, int n, Source src) {
            if (sinceFlush + n > Integer.MAX_VALUE) flush();
            range.begin(n);
            for (int from = 0; from < n; from += CHUNK) {
                int len = Math.min(CHUNK, n - from);
                src.read(from, len);
                if (locate(len) != 0) {
                    for (int f = 0; f < from; f += CHUNK) {
                        int l = Math.min(CHUNK, n - f);
                        src.read(f, l);
                        locate(l);
                        for (int i = 0; i < l; i++) recent[slots[i]]--;
                    }
                    for (int i = 0; i < n; i++) {
                        float x = src.value(i);
                        if (!Float.isFinite(x)) throw MinMaxStats.nonFinite(tensor, x, i);
                    }
                }
                int[] c = recent, s = slots;
                for (int i = 0; i < len; i++) c[s[i]]++;
                range.chunk(floats, len);
            }
            range.end(n);
            sinceFlush += n;
        }

        /** The slots of bits[0..len) into {@link #slots}; returns how many of the values are NaN or infinite. */
        private int locate(int len) {
            int[] b = bits, s = slots, z = ZERO_SLOT;
            int special = 0;
            for (int i = 0; i < len; i++) {
                int x = b[i];
                int zero = ((x & 0x7FFFFFFF) - 1) >> 31; // −1 for ±0
                int slot = (x + ROUND_UP) >>> SHIFT;
                s[i] = (slot & ~zero) | (z[i] & zero);
                special += ((x & 0x7F800000) + 0x00800000) >>> 31; // exponent all ones
            }
            return special;
        }

        private void flush() {
            if (flushed == null) flushed = new long[recent.length];
            for (int i = 0; i < recent.length; i++) flushed[i] += recent[i];
            Arrays.fill(recent, 0);
            sinceFlush = 0;
        }

        /** Number of values added so far. */
        public long count() {
            return range.count();
        }

        private long slot(int i) {
            return recent[i] + (flushed == null ? 0 : flushed[i]);
        }

        /** The values added so far, in compact form. */
        public ExponentHistogram finish() {
            long count = range.count();
            if (count == 0) return empty();
            // slot k < KEYS: bin k; slot KEYS + k: bin −k; the spares: bin 0. In the order of the bins.
            int held = 0;
            long zeros = 0;
            for (int i = ZEROS; i < ZEROS + SPARES; i++) zeros += slot(i);
            for (int k = 1; k < KEYS; k++) {
                if (slot(k) != 0) held++;
                if (slot(KEYS + k) != 0) held++;
            }
            if (zeros != 0) held++;
            int[] bins = new int[held];
            long[] counts = new long[held];
            int at = 0;
            for (int k = KEYS - 1; k >= 1; k--) {
                long c = slot(KEYS + k);
                if (c != 0) {
                    bins[at] = -k;
                    counts[at++] = c;
                }
            }
            if (zeros != 0) {
                bins[at] = 0;
                counts[at++] = zeros;
            }
            for (int k = 1; k < KEYS; k++) {
                long c = slot(k);
                if (c != 0) {
                    bins[at] = k;
                    counts[at++] = c;
                }
            }
            return new ExponentHistogram(count, range.min(), range.max(), bins, counts);
        }
    }
}
