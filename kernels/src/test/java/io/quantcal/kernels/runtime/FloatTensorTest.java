package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class FloatTensorTest {

    @Test
    void shapeMustMatchTheData() {
        assertThrows(IllegalArgumentException.class, () -> FloatTensor.of("t", new float[5], 2, 3));
        assertThrows(IllegalArgumentException.class, () -> FloatTensor.of("t", new float[0], 2, -1));
        assertThrows(NullPointerException.class, () -> FloatTensor.of(null, new float[1], 1));
        assertEquals(1, FloatTensor.of("scalar", new float[] {3f}).data().length);
    }

    @Test
    void shapeIsCopied() {
        long[] s = {2, 2};
        FloatTensor t = FloatTensor.of("t", new float[4], s);
        s[0] = 9;
        t.shape()[1] = 9;
        assertArrayEquals(new long[] {2, 2}, t.shape());
    }

    @Test
    void aSequenceFirstBatchIsMovedToAxisZero() {
        // [T=3, N=2, D=2], value = 100 t + 10 n + d
        float[] v = new float[12];
        for (int t = 0; t < 3; t++) for (int n = 0; n < 2; n++) for (int d = 0; d < 2; d++) v[(t * 2 + n) * 2 + d] = 100 * t + 10 * n + d;
        FloatTensor moved = FloatTensor.of("q", v, 3, 2, 2).batchFirst(2);
        assertArrayEquals(new long[] {2, 3, 2}, moved.shape());
        for (int n = 0; n < 2; n++) for (int t = 0; t < 3; t++) for (int d = 0; d < 2; d++) {
            assertEquals(100 * t + 10 * n + d, moved.data()[(n * 3 + t) * 2 + d]);
        }
        FloatTensor first = FloatTensor.of("x", new float[6], 2, 3);
        assertEquals(first, first.batchFirst(2));
        // no axis of the batch's size before the last, or two of them: the samples cannot be told apart
        assertThrows(IllegalStateException.class, () -> FloatTensor.of("x", new float[12], 3, 4).batchFirst(2));
        assertThrows(IllegalStateException.class, () -> FloatTensor.of("x", new float[36], 3, 2, 2, 3).batchFirst(2));
    }

    @Test
    void batchesSliceAndConcatenateAlongTheFirstDimension() {
        FloatTensor t = FloatTensor.of("t", new float[] {0, 1, 2, 3, 4, 5}, 3, 2);
        assertEquals(FloatTensor.of("t", new float[] {2, 3, 4, 5}, 2, 2), t.batch(1, 3));
        assertEquals(t, FloatTensor.concat("t", List.of(t.batch(0, 1), t.batch(1, 3))));
        assertThrows(IllegalArgumentException.class,
                () -> FloatTensor.concat("t", List.of(t, FloatTensor.of("u", new float[3], 1, 3))));
        assertThrows(IndexOutOfBoundsException.class, () -> t.batch(2, 4));
    }
}
