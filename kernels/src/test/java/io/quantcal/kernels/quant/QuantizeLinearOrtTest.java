package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * FakeQuant agrees bit for bit with ONNX Runtime's QuantizeLinear → DequantizeLinear: the integer codes and the
 * dequantized floats, on exact ties (k + ½)·s, values on the grid, beyond the range, ±0, tiny and subnormal
 * values and ±∞, per tensor and per channel, int8 / uint8 (opset 13) and int16 / uint16 (opset 21).
 */
class QuantizeLinearOrtTest {

    @Test
    void int8AffinePerTensor() throws Exception {
        QuantParams p = QuantParams.perTensor(QuantGrid.of(8, true), false, 0.0123, -17);
        check(13, new long[] {64, 64}, p, 1);
    }

    @Test
    void uint8AffinePerTensor() throws Exception {
        QuantParams p = AffineQuantizer.fromRange(QuantGrid.of(8, false), -4.2, 5.3);
        assertEquals(113, p.zeroPoint(0), "zp = round(0 − (−4.2)/(9.5/255))");
        check(13, new long[] {4096}, p, 2);
    }

    @Test
    void int8SymmetricPerTensorWithinTheNarrowGrid() throws Exception {
        check(13, new long[] {4096}, SymmetricQuantizer.fromClip(8, true, 2.5), 3);
    }

    @Test
    void uint8SymmetricPerTensor() throws Exception {
        check(13, new long[] {4096}, SymmetricQuantizer.fromClip(8, false, 6.0), 4);
    }

    @Test
    void int8PerChannelOnAxis0OfConvWeight() throws Exception {
        long[] shape = {16, 8, 3, 3};
        check(13, shape, AffineQuantizer.fromRanges(QuantGrid.of(8, true), 0, mins(16, 5), maxs(16, 5)), 5);
        check(13, shape, SymmetricQuantizer.fromClips(8, true, 0, maxs(16, 6)), 6);
    }

    @Test
    void int8PerChannelOnAxis1OfMatMulWeight() throws Exception {
        long[] shape = {300, 12};
        check(13, shape, AffineQuantizer.fromRanges(QuantGrid.of(8, true), 1, mins(12, 7), maxs(12, 7)), 7);
    }

    @Test
    void uint8PerChannel() throws Exception {
        check(13, new long[] {300, 12}, AffineQuantizer.fromRanges(QuantGrid.of(8, false), 1, mins(12, 8), maxs(12, 8)), 8);
        check(13, new long[] {10, 40, 3, 3}, SymmetricQuantizer.fromClips(8, false, 0, maxs(10, 9)), 9);
    }

    @Test
    void int16AndUint16PerTensorInOpset21() throws Exception {
        check(21, new long[] {8192}, QuantParams.perTensor(QuantGrid.of(16, true), false, 0x1p-10, -1000), 10);
        check(21, new long[] {8192}, AffineQuantizer.fromRange(QuantGrid.of(16, false), -3.7, 11.1), 11);
        // zero point 0 on the full int16 grid: ORT has no int16 Clip to narrow it (the narrow 16-bit grid is
        // checked by hand in QuantizerHandWorkedTest)
        check(21, new long[] {8192}, QuantParams.perTensor(QuantGrid.of(16, true), true, 7.5 / 32767, 0), 12);
    }

    @Test
    void int16AndUint16PerChannelInOpset21() throws Exception {
        check(21, new long[] {8, 4, 3, 3}, AffineQuantizer.fromRanges(QuantGrid.of(16, true), 0, mins(8, 13), maxs(8, 13)), 13);
        check(21, new long[] {200, 6}, AffineQuantizer.fromRanges(QuantGrid.of(16, false), 1, mins(6, 14), maxs(6, 14)), 14);
    }

    /**
     * ONNX Runtime's QuantizeLinear saturates to the whole int8 type: below −127.5·s it gives −128 where the
     * narrow symmetric grid gives −127. A QDQ export of a narrow grid therefore needs the range (or a Clip) to
     * keep that from happening; this pins down where the two differ.
     */
    @Test
    void plainQuantizeLinearSaturatesToMinus128BelowTheNarrowGrid() throws Exception {
        QuantParams p = SymmetricQuantizer.fromClip(8, true, 2.5);
        long[] shape = {4096};
        float[] x = probe(shape, p, 15);
        OrtQdq.Result ort = OrtQdq.run(13, x, shape, p, false);
        int[] q = FakeQuant.quantize(x, shape, p);
        float s = (float) p.scale(0);
        int differing = 0;
        for (int i = 0; i < x.length; i++) {
            boolean belowNarrow = Math.rint(x[i] / s) <= -128;
            if (belowNarrow) {
                differing++;
                assertEquals(-128, ort.q()[i], "ORT code of x=" + x[i]);
                assertEquals(-127, q[i], "narrow-grid code of x=" + x[i]);
            } else {
                assertEquals(ort.q()[i], q[i], "code of x=" + x[i]);
            }
        }
        assertTrue(differing > 100, "the probe has values below the narrow grid: " + differing);
    }

    // ---------------------------------------------------------------------------------------------------

    private static void check(long opset, long[] shape, QuantParams p, long seed) throws Exception {
        float[] x = probe(shape, p, seed);
        OrtQdq.Result ort = OrtQdq.run(opset, x, shape, p);
        int[] q = FakeQuant.quantize(x, shape, p);
        float[] y = FakeQuant.apply(x, shape, p);
        float[] yFromOrtCodes = FakeQuant.dequantize(ort.q(), shape, p);
        // the in-place form (a search loop's) writes the same values at an offset and nothing else
        float[] into = new float[x.length + 5];
        java.util.Arrays.fill(into, 42f);
        FakeQuant.applyInto(x, shape, p, into, 3);
        assertEquals(42f, into[2]);
        assertEquals(42f, into[x.length + 3]);
        int ties = 0;
        for (int i = 0; i < x.length; i++) {
            int c = channel(i, shape, p);
            float v = x[i] / (float) p.scale(c);
            if (Math.abs(v - Math.floor(v) - 0.5) == 0 && Float.isFinite(v)) ties++;
            String where = p + ", element " + i + " (channel " + c + "), x=" + x[i] + " (bits "
                    + Integer.toHexString(Float.floatToRawIntBits(x[i])) + "), x/s=" + v;
            if (q[i] != ort.q()[i]) fail("code differs from ORT: " + q[i] + " vs " + ort.q()[i] + " at " + where);
            if (Float.floatToRawIntBits(y[i]) != Float.floatToRawIntBits(ort.y()[i])) {
                fail("dequantized value differs from ORT: " + y[i] + " vs " + ort.y()[i] + " at " + where);
            }
            if (Float.floatToRawIntBits(into[3 + i]) != Float.floatToRawIntBits(ort.y()[i])) {
                fail("FakeQuant.applyInto differs from ORT: " + into[3 + i] + " vs " + ort.y()[i] + " at " + where);
            }
            if (Float.floatToRawIntBits(yFromOrtCodes[i]) != Float.floatToRawIntBits(ort.y()[i])) {
                fail("DequantizeLinear differs from FakeQuant.dequantize of ORT's codes at " + where);
            }
        }
        // the probe is only a test of the rounding rule if it contains exact ties in float32
        assertTrue(ties > x.length / 8, "exact ties in the probe: " + ties + " of " + x.length);
    }

    /**
     * A few thousand values meant to catch rounding and saturation differences, for each element relative to
     * its own channel's step s and zero point.
     */
    static float[] probe(long[] shape, QuantParams p, long seed) {
        int n = 1;
        for (long d : shape) n *= (int) d;
        float[] x = new float[n];
        float[] special = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-40f, -1e-40f, Float.MIN_NORMAL,
                -Float.MIN_NORMAL, 1e-30f, -1e-30f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.MAX_VALUE, -Float.MAX_VALUE};
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < n; i++) {
            int c = channel(i, shape, p);
            float s = (float) p.scale(c);
            int lo = p.qmin() - p.zeroPoint(c);
            int hi = p.qmax() - p.zeroPoint(c);
            x[i] = switch (i % 8) {
                case 0, 1, 2 -> (r.nextInt(lo - 3, hi + 3) + 0.5f) * s;          // ties, also just outside
                case 3 -> r.nextInt(lo - 2, hi + 3) * s;                          // on the grid
                case 4 -> (float) ((lo - 4 + r.nextDouble() * (hi - lo + 8)) * s); // anywhere near the range
                case 5 -> (float) ((r.nextBoolean() ? hi : lo) * s * (1 + r.nextDouble() * 100)); // far beyond
                case 6 -> special[r.nextInt(special.length)];
                default -> (float) (r.nextDouble() * 2 - 1) * 3 * s;             // near zero
            };
        }
        return x;
    }

    private static int channel(int i, long[] shape, QuantParams p) {
        if (!p.perChannel()) return 0;
        long inner = 1;
        for (int d = p.axis() + 1; d < shape.length; d++) inner *= shape[d];
        return (int) ((i / inner) % shape[p.axis()]);
    }

    /** Channel minima (≤ 0 mostly, one all-positive channel) for per-channel ranges. */
    private static double[] mins(int channels, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] m = new double[channels];
        for (int c = 0; c < channels; c++) m[c] = c == 1 ? 0.25 : -r.nextDouble(0.01, 3);
        return m;
    }

    private static double[] maxs(int channels, long seed) {
        SplittableRandom r = new SplittableRandom(seed + 1000);
        double[] m = new double[channels];
        for (int c = 0; c < channels; c++) m[c] = c == 1 ? 1.75 : r.nextDouble(0.01, 3);
        return m;
    }
}
