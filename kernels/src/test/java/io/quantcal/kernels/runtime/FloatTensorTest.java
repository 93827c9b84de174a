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
    void batchesSliceAndConcatenateAlongTheFirstDimension() {
        FloatTensor t = FloatTensor.of("t", new float[] {0, 1, 2, 3, 4, 5}, 3, 2);
        assertEquals(FloatTensor.of("t", new float[] {2, 3, 4, 5}, 2, 2), t.batch(1, 3));
        assertEquals(t, FloatTensor.concat("t", List.of(t.batch(0, 1), t.batch(1, 3))));
        assertThrows(IllegalArgumentException.class,
                () -> FloatTensor.concat("t", List.of(t, FloatTensor.of("u", new float[3], 1, 3))));
        assertThrows(IndexOutOfBoundsException.class, () -> t.batch(2, 4));
    }
}
