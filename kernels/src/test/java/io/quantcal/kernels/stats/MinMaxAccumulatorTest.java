package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MinMaxAccumulatorTest {

    private static ByteBuffer buffer(float[] v) {
        ByteBuffer b = ByteBuffer.allocateDirect(4 * v.length).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(v);
        return b;
    }

    @Test
    void countMinAndMaxAreThoseOfAScanWhateverTheCallSizes() {
        // calls shorter and longer than the lanes, and not multiples of them; the extremes put anywhere
        Random r = new Random(9);
        MinMaxAccumulator acc = new MinMaxAccumulator();
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        long count = 0;
        for (int n : new int[] {1, 7, MinMaxAccumulator.LANES - 1, MinMaxAccumulator.LANES, 3 * MinMaxAccumulator.LANES + 5, 100}) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * 10);
            v[r.nextInt(n)] = (float) (r.nextDouble() * 100) - 50;
            for (float x : v) {
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            count += n;
            ByteBuffer b = buffer(v);
            b.position(0);
            acc.add("t", b);
            assertEquals(0, b.position(), "the buffer is left in place");
        }
        MinMaxStats s = acc.finish();
        assertEquals(count, s.count());
        assertEquals(min, s.min(), 0.0);
        assertEquals(max, s.max(), 0.0);
    }

    @Test
    void aZeroOfEitherSignIsPlusZeroAndNothingAddedIsEmpty() {
        MinMaxAccumulator acc = new MinMaxAccumulator();
        assertEquals(MinMaxStats.empty(), acc.finish());
        acc.add("t", buffer(new float[] {-0.0f, 0.0f, -0.0f}));
        assertEquals(Float.floatToRawIntBits(0.0f), Float.floatToRawIntBits((float) acc.finish().min()));
        assertEquals(Float.floatToRawIntBits(0.0f), Float.floatToRawIntBits((float) acc.finish().max()));
    }

    @Test
    void aCallWithANonFiniteValueIsRefusedNamingTheFirstAndLeavesNoTrace() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            MinMaxAccumulator acc = new MinMaxAccumulator();
            acc.add("t", buffer(new float[] {1f, 2f, 3f}));
            float[] v = new float[MinMaxAccumulator.LANES + 10];
            v[0] = -1000f;
            v[5] = 1000f;
            v[MinMaxAccumulator.LANES + 3] = bad;
            v[MinMaxAccumulator.LANES + 7] = Float.NaN;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> acc.add("conv1.in", buffer(v)));
            assertEquals("tensor conv1.in: value " + bad + " at index " + (MinMaxAccumulator.LANES + 3)
                    + " is not finite; calibration statistics need finite values", e.getMessage());
            MinMaxStats s = acc.finish();
            assertEquals(3, s.count());
            assertEquals(1.0, s.min(), 0.0);
            assertEquals(3.0, s.max(), 0.0);
        }
    }
}
