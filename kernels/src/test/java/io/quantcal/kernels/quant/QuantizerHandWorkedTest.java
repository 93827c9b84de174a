package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * Bit widths ONNX QuantizeLinear has no type for (2, 3, 4, 7) and 16 bits, worked by hand:
 * q = clamp(rint(x/s) + Z, qmin, qmax), x̂ = (q − Z)·s, ties to even. Where s is not a power of two the
 * float32 quotient x/s is written out, because whether it is a tie depends on it.
 */
class QuantizerHandWorkedTest {

    @Test
    void twoBitSignedAffineAndNarrowSymmetric() {
        QuantGrid g = QuantGrid.of(2, true);
        assertEquals(-2, g.qmin());
        assertEquals(1, g.qmax());
        // range [−1, 2]: s = 3/3 = 1, Z = round(−2 − (−1)/1) = −1
        QuantParams p = AffineQuantizer.fromRange(g, -1, 2);
        assertEquals(1.0, p.scale(0));
        assertEquals(-1, p.zeroPoint(0));
        check(p,
                new float[] {0.5f, 1.5f, 2.5f, 3f, -1.5f, -0.5f},
                // 0.5→0 (tie, even); 1.5→2; 2.5→2 (tie, even); 3→3+Z=2 clamps to 1; −1.5→−2+Z=−3 clamps to −2; −0.5→−0
                new int[] {-1, 1, 1, 1, -2, -1},
                new float[] {0f, 2f, 2f, 2f, -1f, 0f});

        // narrow symmetric 2-bit: grid [−1, 1], clip 1 → s = 1/1
        QuantParams n = SymmetricQuantizer.fromClip(2, true, 1.0);
        assertEquals(-1, n.qmin());
        assertEquals(1, n.qmax());
        assertEquals(1.0, n.scale(0));
        check(n, new float[] {0.5f, 1.5f, -0.7f, -0.5f, 0.49f, -9f},
                new int[] {0, 1, -1, 0, 0, -1},
                new float[] {0f, 1f, -1f, 0f, 0f, -1f});
    }

    @Test
    void threeBitSignedAffine() {
        // grid [−4, 3]; range [−0.5, 3]: s = 3.5/7 = 0.5, Z = round(−4 − (−0.5)/0.5) = −3
        QuantParams p = AffineQuantizer.fromRange(QuantGrid.of(3, true), -0.5, 3);
        assertEquals(0.5, p.scale(0));
        assertEquals(-3, p.zeroPoint(0));
        check(p,
                new float[] {0.25f, 0.75f, 1.25f, 3.2f, 3.3f, -0.6f, -1f},
                // x/s = 0.5→0, 1.5→2, 2.5→2 (ties to even), 6.4→6, 6.6→7 (+Z = 4 > 3), −1.2→−1, −2 (+Z = −5 < −4)
                new int[] {-3, -1, -1, 3, 3, -4, -4},
                new float[] {0f, 1f, 1f, 3f, 3f, -0.5f, -0.5f});
    }

    @Test
    void fourBitUnsignedAffineOnMinusOneToTwo() {
        // grid [0, 15]; range [−1, 2]: s = 3/15 = 0.2 (float32 0.2f = 0.200000003), Z = round(0 − (−1)/0.2f) = 5
        QuantParams p = AffineQuantizer.fromRange(QuantGrid.of(4, false), -1, 2);
        assertEquals(0.2f, (float) p.scale(0));
        assertEquals(5, p.zeroPoint(0));
        check(p,
                new float[] {0f, 2f, -1f, 0.25f, 0.35f, 5f, -3f, 0.1f, -0.1f, 0.5f, 0.7f},
                // float32 x/0.2f: 0, 10, −5, 1.25, 1.75, 25 (clamps), −15 (clamps),
                // 0.1f/0.2f = 0.5 exactly (0.1f is half of 0.2f): tie → 0;  −0.5 → −0;
                // 0.5/0.2f = 2.49999996 rounds to 2.5f in float32: tie → 2;  0.7f/0.2f = 3.4999999 → 3.5f: tie → 4
                new int[] {5, 15, 0, 6, 7, 15, 0, 5, 5, 7, 9},
                // (q − 5)·0.2f in float32: 10·0.2f = 2.0000000298 rounds to 2f, −5·0.2f to −1f
                new float[] {0f, 2f, -1f, 0.2f, 0.4f, 2f, -1f, 0f, 0f, 0.4f, 0.8f});
    }

    @Test
    void fourBitNarrowSymmetric() {
        // grid [−7, 7]; clip 1.75 → s = 1.75/7 = 0.25
        QuantParams p = SymmetricQuantizer.fromClip(4, true, 1.75);
        assertEquals(-7, p.qmin());
        assertEquals(0.25, p.scale(0));
        check(p,
                new float[] {0.125f, 0.375f, -0.625f, -2f, 1.75f, 2f},
                // x/s = 0.5→0, 1.5→2, −2.5→−2 (ties to even), −8 clamps to −7 (not −8: narrow), 7, 8 clamps to 7
                new int[] {0, 2, -2, -7, 7, 7},
                new float[] {0f, 0.5f, -0.5f, -1.75f, 1.75f, 1.75f});
    }

    @Test
    void threeBitNarrowUnsigned() {
        QuantGrid g = new QuantGrid(3, false, true);
        assertEquals(0, g.qmin());
        assertEquals(6, g.qmax());
        QuantParams p = QuantParams.perTensor(g, true, 0.5, 3);
        check(p, new float[] {2f, -2f, 0.75f, 0.25f},
                // x/s = 4 (+3 = 7 > 6), −4 (+3 = −1 < 0), 1.5→2, 0.5→0
                new int[] {6, 0, 5, 3},
                new float[] {1.5f, -1.5f, 1f, 0f});
    }

    @Test
    void sevenBitSignedAndUnsigned() {
        // grid [−64, 63], s = 1/64, Z = 10
        QuantParams p = QuantParams.perTensor(QuantGrid.of(7, true), false, 0x1p-6, 10);
        check(p,
                new float[] {2.5f / 64, 3.5f / 64, 1f, -1f, -1.5f},
                // x/s = 2.5→2, 3.5→4 (ties), 64 (+10 = 74 > 63), −64 (+10 = −54), −96 (+10 = −86 < −64)
                new int[] {12, 14, 63, -54, -64},
                new float[] {0.03125f, 0.0625f, 53 / 64f, -1f, -74 / 64f});

        // grid [0, 127]; range [0, 12.7]: s = 12.7/127 = 0.1f, Z = 0
        QuantParams u = AffineQuantizer.fromRange(QuantGrid.of(7, false), 0, 12.7);
        assertEquals(0.1f, (float) u.scale(0));
        assertEquals(0, u.zeroPoint(0));
        check(u,
                new float[] {0.05f, 0.15f, 0.25f, 13f},
                // 0.05f/0.1f = 0.5 exactly: tie → 0; 0.15f/0.1f and 0.25f/0.1f round to 1.5f and 2.5f: ties → 2, 2;
                // 130 clamps to 127, and 127·0.1f = 12.70000019 rounds to 12.7f
                new int[] {0, 2, 2, 127},
                new float[] {0f, 0.2f, 0.2f, 12.7f});
    }

    @Test
    void sixteenBitSignedUnsignedAndNarrow() {
        QuantGrid g = QuantGrid.of(16, true);
        assertEquals(-32768, g.qmin());
        assertEquals(32767, g.qmax());
        QuantParams p = QuantParams.perTensor(g, false, 0x1p-10, -1000);
        check(p,
                new float[] {10.5f / 1024, 11.5f / 1024, 40f, -40f},
                // x/s = 10.5→10, 11.5→12; 40960 − 1000 = 39960 > 32767; −40960 − 1000 < −32768
                new int[] {-990, -988, 32767, -32768},
                new float[] {10 / 1024f, 12 / 1024f, 33767 / 1024f, -31768 / 1024f});

        // grid [0, 65535]; range [−8, 8183.875]: s = 8191.875/65535 = 0.125, Z = round(0 + 8/0.125) = 64
        QuantParams u = AffineQuantizer.fromRange(QuantGrid.of(16, false), -8, 8183.875);
        assertEquals(0.125, u.scale(0));
        assertEquals(64, u.zeroPoint(0));
        check(u,
                new float[] {0.0625f, 0.1875f, 9000f, -9f},
                new int[] {64, 66, 65535, 0},
                new float[] {0f, 0.25f, 8183.875f, -8f});

        // narrow grid [−32767, 32767]; clip 32767/256 → s = 1/256
        QuantParams n = SymmetricQuantizer.fromClip(16, true, 32767 / 256.0);
        assertEquals(-32767, n.qmin());
        assertEquals(0x1p-8, n.scale(0));
        check(n,
                new float[] {-200f, 0.5f / 256, 1.5f / 256, 200f},
                new int[] {-32767, 0, 2, 32767},
                new float[] {-127.99609375f, 0f, 2 / 256f, 127.99609375f});
    }

    private static void check(QuantParams p, float[] x, int[] q, float[] xHat) {
        long[] shape = {x.length};
        assertArrayEquals(q, FakeQuant.quantize(x, shape, p), "codes under " + p);
        assertArrayEquals(xHat, FakeQuant.apply(x, shape, p), "dequantized values under " + p);
        assertArrayEquals(xHat, FakeQuant.dequantize(q, shape, p), "dequantized codes under " + p);
    }
}
