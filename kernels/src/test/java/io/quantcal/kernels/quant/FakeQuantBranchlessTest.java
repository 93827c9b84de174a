package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * FakeQuant's branchless loop against the scalar rule it replaces, AffineQuantizer.quantize then dequantize (itself
 * checked against ONNX Runtime's QuantizeLinear in QuantizeLinearOrtTest): bit for bit on random values, on every
 * tie x/s = k + 1/2 around the grid, on ±0, ±∞, NaN, subnormals and values far outside the grid, for 2 to 16 bits,
 * signed and unsigned, zero points at either end and inside, per tensor and per channel (axis 0 and the last axis).
 */
class FakeQuantBranchlessTest {

    static float reference(float x, float s, int z, int qmin, int qmax) {
        return AffineQuantizer.dequantize(AffineQuantizer.quantize(x, s, z, qmin, qmax), s, z);
    }

    static float[] values(float s, int qmin, int qmax, int z, Random r) {
        int n = 4000;
        float[] v = new float[n + 2 * (qmax - qmin + 8) + 20];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * s * (qmax - qmin) * (r.nextBoolean() ? 0.3 : 1.5));
        int k = n;
        // ties: x = (c + 1/2)·s for every code c across and just outside the grid, and their negatives
        for (int c = qmin - z - 4; c <= qmax - z + 3; c++) {
            v[k++] = (c + 0.5f) * s;
            v[k++] = Math.nextUp((c + 0.5f) * s);
        }
        float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE,
                1e30f, -1e30f, 0x1p22f * s, -0x1p22f * s, 0x1.8p23f * s, -0x1.8p23f * s, 0x1p24f * s, -0x1p24f * s,
                Float.MAX_VALUE, -Float.MAX_VALUE, 0.49999997f * s, -0.49999997f * s, 3 * s};
        for (float f : special) v[k++] = f;
        return java.util.Arrays.copyOf(v, k);
    }

    @Test
    void equalsTheScalarRuleBitForBit() {
        Random r = new Random(17);
        int checked = 0;
        for (int b = 2; b <= 16; b++) {
            int bits = b;
            for (boolean signed : new boolean[] {false, true}) {
                QuantGrid grid = QuantGrid.of(bits, signed);
                int qmin = grid.qmin(), qmax = grid.qmax();
                for (int z : new int[] {qmin, qmax, (qmin + qmax) / 2 + 1, signed ? 0 : qmin}) {
                    float s = (float) (0.0137 * (1 + r.nextDouble()));
                    float[] x = values(s, qmin, qmax, z, r);
                    QuantParams p = QuantParams.perTensor(grid, false, s, z);
                    float[] got = FakeQuant.apply(x, new long[] {x.length}, p);
                    for (int i = 0; i < x.length; i++) {
                        assertEquals(Float.floatToRawIntBits(reference(x[i], s, z, qmin, qmax)), Float.floatToRawIntBits(got[i]),
                                () -> bits + " bits " + (signed ? "signed" : "unsigned") + " z " + z + " s " + s);
                        checked++;
                    }
                }
            }
        }
        assertEquals(true, checked > 500_000);
    }

    @Test
    void perChannelOnTheFirstAndTheLastAxis() {
        Random r = new Random(3);
        QuantGrid grid = QuantGrid.of(4, false);
        int channels = 3, length = 400;
        double[] s = {0.011, 0.2, 0.037};
        int[] z = {0, 7, 15};
        float[] x = new float[channels * length];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 2);
        x[5] = Float.NaN;
        x[channels * length - 2] = Float.NaN;
        for (int axis : new int[] {0, 1}) {
            long[] shape = axis == 0 ? new long[] {channels, length} : new long[] {length, channels};
            QuantParams p = new QuantParams(grid, false, axis, s, z);
            float[] got = new float[x.length + 5];
            FakeQuant.applyInto(x, shape, p, got, 5);
            for (int i = 0; i < x.length; i++) {
                int c = axis == 0 ? i / length : i % channels;
                assertEquals(Float.floatToRawIntBits(reference(x[i], (float) s[c], z[c], grid.qmin(), grid.qmax())),
                        Float.floatToRawIntBits(got[5 + i]), "axis " + axis + " index " + i);
            }
        }
    }
}
