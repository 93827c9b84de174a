package io.quantcal.kernels.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Metrics on hand-worked vectors. */
class MetricsTest {

    static INDArray v(float... x) {
        return Nd4j.createFromArray(x);
    }

    @Test
    void cosineOfHandWorkedVectors() {
        assertEquals(1 / Math.sqrt(2), Metrics.cosine(v(1, 0), v(1, 1)), 1e-15);
        assertEquals(1.0, Metrics.cosine(v(2, 4), v(1, 2)), 1e-15);
        assertEquals(-1.0, Metrics.cosine(v(1, -1), v(-3, 3)), 1e-15);
        assertEquals(0.0, Metrics.cosine(v(1, 0), v(0, 5)), 0);
        // 3·4 + 4·3 = 24 over 5·5
        assertEquals(24.0 / 25, Metrics.cosine(new float[] {3, 4}, new float[] {4, 3}), 1e-15);
    }

    @Test
    void cosineOfZeroVectors() {
        assertEquals(1.0, Metrics.cosine(v(0, 0), v(0, 0)), 0);
        assertEquals(0.0, Metrics.cosine(v(0, 0), v(1, 2)), 0);
        assertEquals(0.0, Metrics.cosine(v(1, 2), v(0, 0)), 0);
    }

    @Test
    void cosineAccumulatesInDouble() {
        // a million equal tiny terms: float accumulation would drift, double does not
        int n = 1_000_000;
        INDArray a = Nd4j.valueArrayOf(new long[] {n}, 1e-3f);
        INDArray b = a.dup();
        b.putScalar(0, 2e-3f);
        double dot = (n - 1) * 1e-6 + 2e-6, aa = n * 1e-6, bb = (n - 1) * 1e-6 + 4e-6;
        assertEquals(dot / Math.sqrt(aa * bb), Metrics.cosine(a, b), 1e-9);
    }

    @Test
    void cosinePerSample() {
        INDArray a = Nd4j.createFromArray(new float[][] {{1, 0}, {3, 4}, {0, 0}});
        INDArray b = Nd4j.createFromArray(new float[][] {{1, 1}, {4, 3}, {0, 0}});
        assertArrayEquals(new double[] {1 / Math.sqrt(2), 24.0 / 25, 1.0}, Metrics.cosinePerSample(a, b), 1e-15);
    }

    @Test
    void cosinePerChannelSumsOverSamplesAndPositions() {
        // [N=2, C=2, 2]: channel 0 holds (1,0),(0,0) vs (1,1),(0,0); channel 1 holds (1,2),(3,4) vs the same
        INDArray a = Nd4j.create(new float[] {1, 0, 1, 2, 0, 0, 3, 4}, new long[] {2, 2, 2}, 'c');
        INDArray b = Nd4j.create(new float[] {1, 1, 1, 2, 0, 0, 3, 4}, new long[] {2, 2, 2}, 'c');
        assertArrayEquals(new double[] {1 / Math.sqrt(2), 1.0}, Metrics.cosinePerChannel(a, b), 1e-15);
        // NCHW: per channel equals the cosine of that channel's slice
        INDArray x = OrtReference.uniform(1, 3, 4, 5, 5), y = OrtReference.uniform(2, 3, 4, 5, 5);
        double[] per = Metrics.cosinePerChannel(x, y);
        for (int c = 0; c < 4; c++) {
            INDArray xc = x.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(c));
            INDArray yc = y.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(c));
            assertEquals(Metrics.cosine(xc, yc), per[c], 1e-12);
        }
    }

    @Test
    void sqnrOfHandWorkedVectors() {
        assertEquals(10 * Math.log10(25.0 / 1), Metrics.sqnr(v(3, 4), v(3, 3)), 1e-12);
        assertEquals(Double.POSITIVE_INFINITY, Metrics.sqnr(v(3, 4), v(3, 4)));
        assertEquals(Double.POSITIVE_INFINITY, Metrics.sqnr(v(0, 0), v(0, 0)));
        assertEquals(Double.NEGATIVE_INFINITY, Metrics.sqnr(v(0, 0), v(1, 0)));
    }

    @Test
    void mseOfHandWorkedVectors() {
        assertEquals(0.5, Metrics.mse(v(3, 4), v(3, 3)), 0);
        assertEquals((1 + 4 + 9) / 3.0, Metrics.mse(v(1, 2, 3), v(0, 0, 0)), 1e-15);
    }

    @Test
    void layoutDoesNotMatter() {
        // 'f' ordered, views and doubles are read by logical (row-major) index
        INDArray a = OrtReference.uniform(3, 4, 6), b = OrtReference.uniform(4, 4, 6);
        double cos = Metrics.cosine(a, b), sq = Metrics.sqnr(a, b), mse = Metrics.mse(a, b);
        assertEquals(cos, Metrics.cosine(a.dup('f'), b), 1e-15);
        assertEquals(sq, Metrics.sqnr(a, b.dup('f')), 1e-12);
        assertEquals(mse, Metrics.mse(a.castTo(DataType.DOUBLE), b), 1e-15);
        INDArray at = a.transpose().dup('c').transpose(); // a view with transposed strides
        assertArrayEquals(Metrics.cosinePerSample(a, b), Metrics.cosinePerSample(at, b), 1e-15);
    }

    @Test
    void shapesMustMatch() {
        assertThrows(IllegalArgumentException.class, () -> Metrics.cosine(v(1, 2), v(1, 2, 3)));
        assertThrows(IllegalArgumentException.class, () -> Metrics.sqnr(Nd4j.zeros(2, 3), Nd4j.zeros(3, 2)));
        assertThrows(IllegalArgumentException.class, () -> Metrics.cosinePerChannel(v(1, 2), v(1, 2)));
    }
}
