package io.quantcal.kernels.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.kernels.calib.ModelComparison.Sums;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A layer's sums merge by addition and give the SQNR and cosine of the whole data's outputs, worked by hand. */
class ModelComparisonSumsTest {

    /** {Σ a², Σ (a − b)², Σ a·b, Σ b²} of two vectors. */
    static double[] sums(double[] a, double[] b) {
        double[] s = new double[4];
        for (int i = 0; i < a.length; i++) {
            s[0] += a[i] * a[i];
            s[1] += (a[i] - b[i]) * (a[i] - b[i]);
            s[2] += a[i] * b[i];
            s[3] += b[i] * b[i];
        }
        return s;
    }

    static Sums of(double[] layer) {
        Map<String, double[]> l = new LinkedHashMap<>();
        l.put("t", layer);
        return new Sums(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, l);
    }

    @Test
    void twoSamplesMergeIntoTheWholeDatasCosineAndSqnr() {
        // sample 1: a = (3, 4), b = (3, 3); sample 2: a = (0, 1), b = (1, 1)
        Sums merged = of(sums(new double[] {3, 4}, new double[] {3, 3})).merge(of(sums(new double[] {0, 1}, new double[] {1, 1})));
        double[] l = merged.layers().get("t");
        // over a = (3, 4, 0, 1), b = (3, 3, 1, 1): Σa² 26, Σ(a−b)² 2, Σab 22, Σb² 20
        assertArrayEquals(new double[] {26, 2, 22, 20}, l);
        assertEquals(22 / Math.sqrt(26 * 20), Sums.cosine(l), 1e-15);
        assertEquals(10 * Math.log10(13), Sums.sqnr(l[0], l[1]), 1e-12);
    }

    @Test
    void sqnrOfAnExactCopyAndOfAnAllZeroOutput() {
        assertEquals(Double.POSITIVE_INFINITY, Sums.sqnr(2.0, 0.0), "an exact copy of a signal");
        assertEquals(Double.NaN, Sums.sqnr(0.0, 0.0), "no signal at all (a zero-initialized head): n/a, not infinite");
        assertEquals(10.0, Sums.sqnr(10.0, 1.0), 1e-12);
    }

    @Test
    void cosineOfZeroOutputs() {
        assertEquals(1.0, Sums.cosine(new double[] {0, 0, 0, 0}));
        assertEquals(0.0, Sums.cosine(new double[] {4, 4, 0, 0}));
        assertEquals(-1.0, Sums.cosine(sums(new double[] {1, 2}, new double[] {-2, -4})), 1e-15);
    }
}
