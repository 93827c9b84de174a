package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** How ranges become grids, and what the quantizers refuse. */
class QuantizerRangeRulesTest {

    private static final QuantGrid INT8 = QuantGrid.of(8, true);
    private static final QuantGrid UINT8 = QuantGrid.of(8, false);

    @Test
    void fromRangeWidensAnAllPositiveRangeToStartAtZero() {
        // [1, 3] becomes [0, 3]: s = 3/255, Z = round(−128 − 0/s) = −128
        QuantParams p = AffineQuantizer.fromRange(INT8, 1, 3);
        assertEquals((float) (3.0 / 255), (float) p.scale(0));
        assertEquals(-128, p.zeroPoint(0));
        assertEquals(0.0, p.rangeMin(0));
        assertEquals(3.0, p.rangeMax(0), 1e-6);
    }

    @Test
    void fromRangeWidensAnAllNegativeRangeToEndAtZero() {
        // [−3, −1] becomes [−3, 0]: s = 3/255, Z = round(0 + 3/s) = 255
        QuantParams p = AffineQuantizer.fromRange(UINT8, -3, -1);
        assertEquals((float) (3.0 / 255), (float) p.scale(0));
        assertEquals(255, p.zeroPoint(0));
        assertEquals(0.0, p.rangeMax(0));
        assertEquals(-3.0, p.rangeMin(0), 1e-6);
    }

    @Test
    void zeroIsExactlyRepresentableForAnyRange() {
        SplittableRandom r = new SplittableRandom(42);
        for (int bits : new int[] {2, 3, 4, 7, 8, 16}) {
            for (boolean signed : new boolean[] {true, false}) {
                QuantGrid g = QuantGrid.of(bits, signed);
                for (int i = 0; i < 500; i++) {
                    double a = -Math.exp(r.nextDouble(-12, 8)), b = Math.exp(r.nextDouble(-12, 8));
                    double lo = r.nextInt(4) == 0 ? -a * r.nextDouble() : a, hi = b;
                    QuantParams p = AffineQuantizer.fromRange(g, Math.min(lo, hi), Math.max(lo, hi));
                    float[] zeros = FakeQuant.apply(new float[] {0f, -0f}, new long[] {2}, p);
                    assertEquals(0, Float.floatToRawIntBits(zeros[0]), "0 under " + p);
                    assertEquals(0, Float.floatToRawIntBits(zeros[1]), "−0 under " + p);
                }
            }
        }
    }

    @Test
    void degenerateRangeGetsScaleOneAndZeroPointZero() {
        for (QuantGrid g : new QuantGrid[] {INT8, UINT8, QuantGrid.of(4, true), QuantGrid.of(16, false)}) {
            QuantParams p = AffineQuantizer.fromRange(g, 0, 0);
            assertEquals(1.0, p.scale(0), "scale for " + g);
            assertEquals(0, p.zeroPoint(0), "zero point for " + g);
        }
    }

    @Test
    void symmetricSignedEightBitCoversMinusCToCOnTheNarrowGrid() {
        double c = 3.3;
        QuantParams p = SymmetricQuantizer.fromClip(8, true, c);
        assertEquals(-127, p.qmin());
        assertEquals(127, p.qmax());
        assertEquals(0, p.zeroPoint(0));
        assertEquals((float) (c / 127), (float) p.scale(0));
        assertEquals(-c, p.rangeMin(0), 1e-6);
        assertEquals(c, p.rangeMax(0), 1e-6);
        int[] q = FakeQuant.quantize(new float[] {(float) c, (float) -c, (float) (-2 * c), (float) (2 * c)}, new long[] {4}, p);
        assertEquals(127, q[0]);
        assertEquals(-127, q[1]);
        assertEquals(-127, q[2]);
        assertEquals(127, q[3]);
    }

    @Test
    void symmetricUnsignedEightBitCoversZeroToC() {
        double c = 6.0;
        QuantParams p = SymmetricQuantizer.fromClip(8, false, c);
        assertEquals(0, p.qmin());
        assertEquals(255, p.qmax());
        assertEquals(0, p.zeroPoint(0));
        assertEquals((float) (c / 255), (float) p.scale(0));
        assertEquals(0.0, p.rangeMin(0));
        assertEquals(c, p.rangeMax(0), 1e-6);
        int[] q = FakeQuant.quantize(new float[] {6f, -1f, 100f}, new long[] {3}, p);
        assertEquals(255, q[0]);
        assertEquals(0, q[1]);
        assertEquals(255, q[2]);
    }

    @Test
    void symmetricClipOfARangeIsItsLargerMagnitude() {
        assertEquals(5.0, SymmetricQuantizer.clipOf(-5, 2));
        assertEquals(2.0, SymmetricQuantizer.clipOf(0, 2));
        assertEquals(1.0, SymmetricQuantizer.fromClip(8, true, 0).scale(0), "an all-zero tensor gets step 1");
    }

    // ------------------------------------------------------------------ bad input

    @Test
    void bitsOutsideTwoToSixteenAreRefused() {
        assertMessage(assertThrows(IllegalArgumentException.class, () -> QuantGrid.of(1, true)), "bits", "1");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> QuantGrid.of(17, false)), "bits", "17");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> SymmetricQuantizer.fromClip(1, true, 1)), "bits");
    }

    @Test
    void reversedOrNonFiniteRangesAreRefused() {
        assertMessage(assertThrows(IllegalArgumentException.class, () -> AffineQuantizer.fromRange(INT8, 2, 1)),
                "min <= max", "[2.0, 1.0]");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> AffineQuantizer.fromRange(INT8, Double.NaN, 1)),
                "finite", "NaN");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> AffineQuantizer.fromRange(INT8, 0, Double.POSITIVE_INFINITY)), "finite");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> SymmetricQuantizer.fromClip(8, true, -1)),
                "clip", "-1.0");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> SymmetricQuantizer.fromClip(8, true, Double.NaN)),
                "clip", "NaN");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> SymmetricQuantizer.clipOf(1, -1)), "min <= max");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> AffineQuantizer.fromRanges(INT8, 0, new double[] {-1, -1}, new double[] {1, 1, 1})),
                "minima", "2", "3");
    }

    @Test
    void badParametersAreRefused() {
        assertMessage(assertThrows(IllegalArgumentException.class, () -> QuantParams.perTensor(INT8, false, 0, 0)),
                "scale", "positive");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> QuantParams.perTensor(INT8, false, 1, 200)),
                "zero point 200", "[-128, 127]");
        assertMessage(assertThrows(IllegalArgumentException.class,
                () -> new QuantParams(INT8, false, -1, new double[] {1, 1}, new int[] {0, 0})), "per-tensor", "2");
    }

    @Test
    void channelCountMismatchIsRefused() {
        QuantParams p = SymmetricQuantizer.fromClips(8, true, 0, new double[] {1, 2, 3, 4});
        float[] x = new float[3 * 5];
        assertMessage(assertThrows(IllegalArgumentException.class, () -> FakeQuant.apply(x, new long[] {3, 5}, p)),
                "axis 0", "3 channels", "4");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> FakeQuant.quantize(x, new long[] {15}, p.withScales(new double[] {1, 1, 1, 1}))),
                "axis 0", "15 channels", "4");
        QuantParams axis2 = SymmetricQuantizer.fromClips(8, true, 2, new double[] {1, 2, 3});
        assertMessage(assertThrows(IllegalArgumentException.class, () -> FakeQuant.apply(x, new long[] {3, 5}, axis2)),
                "axis 2", "rank 2");
    }

    @Test
    void shapeThatDoesNotMatchTheValuesIsRefusedPerChannel() {
        QuantParams p = SymmetricQuantizer.fromClips(8, true, 1, new double[] {1, 2, 3});
        assertMessage(assertThrows(IllegalArgumentException.class, () -> FakeQuant.apply(new float[10], new long[] {4, 3}, p)),
                "[4, 3]", "12", "10");
    }

    private static void assertMessage(IllegalArgumentException e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should mention '" + part + "'");
        }
    }
}
