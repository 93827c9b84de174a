package io.quantcal.kernels.stats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * The exact count, min and max of the values of one tensor that one task adds, call after call. Not thread-safe.
 *
 * <p>Min and max are kept per lane (one lane per position in a chunk of {@link #LANES} values, folded at
 * {@link #finish}): a reduction into one variable would chain every value to the one before, where lanes let the
 * compiler turn the loop into vector code (about 0.1 ns per value, with the copy out of a buffer about 0.15). A NaN or
 * an infinity needs no test of its own: {@link Math#min} and {@link Math#max} carry a NaN into the lane and an
 * infinity is a lane's new extreme, so a call whose lanes all end finite held only finite values. A call that held
 * another is refused naming the first such value, and leaves no trace: its lanes are its own until it ends.
 *
 * <p>{@link ExponentHistogram.Accumulator} keeps its min and max with the same lanes.
 */
public final class MinMaxAccumulator {

    /** Values per chunk, and lanes of the running min and max. */
    static final int LANES = 4096;

    private final float[] low = new float[LANES], high = new float[LANES];
    private final float[] callLow = new float[LANES], callHigh = new float[LANES];
    private final float[] floats = new float[LANES];
    private long count;

    public MinMaxAccumulator() {
        Arrays.fill(low, Float.POSITIVE_INFINITY);
        Arrays.fill(high, Float.NEGATIVE_INFINITY);
    }

    /**
     * Adds the float32 values (native byte order) of {@code values} from its position to its limit (which it leaves in
     * place), the values of {@code tensor}.
     *
     * @throws IllegalArgumentException naming the tensor and the index when a value is NaN or infinite; this
     *     accumulator then holds none of {@code values}
     */
    public void add(String tensor, ByteBuffer values) {
        FloatBuffer v = values.duplicate().order(ByteOrder.nativeOrder()).asFloatBuffer();
        int n = v.remaining();
        begin(n);
        for (int from = 0; from < n; from += LANES) {
            int len = Math.min(LANES, n - from);
            v.get(from, floats, 0, len);
            chunk(floats, len);
        }
        if (!callFinite(n)) {
            for (int i = 0; i < n; i++) {
                float x = v.get(i);
                if (!Float.isFinite(x)) throw MinMaxStats.nonFinite(tensor, x, i);
            }
        }
        end(n);
    }

    /** Starts a call of {@code n} values: its own lanes, empty. */
    void begin(int n) {
        int lanes = Math.min(n, LANES);
        Arrays.fill(callLow, 0, lanes, Float.POSITIVE_INFINITY);
        Arrays.fill(callHigh, 0, lanes, Float.NEGATIVE_INFINITY);
    }

    /** Folds f[0..len) into the call's lanes. */
    void chunk(float[] f, int len) {
        float[] lo = callLow, hi = callHigh;
        for (int i = 0; i < len; i++) {
            lo[i] = Math.min(lo[i], f[i]);
            hi[i] = Math.max(hi[i], f[i]);
        }
    }

    /** True when every value of the call of {@code n} values so far was finite. */
    private boolean callFinite(int n) {
        int lanes = Math.min(n, LANES);
        float[] lo = callLow, hi = callHigh;
        int bad = 0;
        for (int i = 0; i < lanes; i++) bad |= (Float.isFinite(lo[i]) ? 0 : 1) | (Float.isFinite(hi[i]) ? 0 : 1);
        return bad == 0;
    }

    /** Ends a call of {@code n} values: its lanes join the accumulated ones. */
    void end(int n) {
        int lanes = Math.min(n, LANES);
        float[] lo = low, hi = high, cl = callLow, ch = callHigh;
        for (int i = 0; i < lanes; i++) {
            lo[i] = Math.min(lo[i], cl[i]);
            hi[i] = Math.max(hi[i], ch[i]);
        }
        count += n;
    }

    /** Number of values added so far. */
    public long count() {
        return count;
    }

    /** The smallest value added so far (+0 for a zero of either sign; +∞ when none). */
    public float min() {
        float m = Float.POSITIVE_INFINITY;
        for (float x : low) m = Math.min(m, x);
        return m + 0.0f;
    }

    /** The largest value added so far (+0 for a zero of either sign; −∞ when none). */
    public float max() {
        float m = Float.NEGATIVE_INFINITY;
        for (float x : high) m = Math.max(m, x);
        return m + 0.0f;
    }

    /** Count, min and max of the values added so far (their sums are not kept: NaN). */
    public MinMaxStats finish() {
        if (count == 0) return MinMaxStats.empty();
        return new MinMaxStats(count, min(), max(), Double.NaN, Double.NaN);
    }
}
