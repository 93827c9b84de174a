package io.quantcal.kernels.layer;

import java.nio.FloatBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How close a quantized layer output is to the floating-point one: cosine similarity (EasyQuant's
 * objective), SQNR and MSE. Inputs are read as float32 (the layers' precision), sums are accumulated in
 * double in one pass, in row-major element order.
 *
 * <p>Zero vectors: the cosine of two zero vectors is 1 (identical outputs, e.g. a channel that ReLU
 * silences in both), and of a zero and a non-zero vector 0 (no direction in common), rather than NaN.
 */
public final class Metrics {

    private Metrics() {}

    /** cos(a, b) = a·b / (|a|·|b|) over the flattened arrays. */
    public static double cosine(INDArray a, INDArray b) {
        Tensors.checkSameShape("cosine", a, b);
        double[] s = sums(Tensors.floats(a), Tensors.floats(b), 0, (int) a.length());
        return cosine(s[0], s[1], s[2]);
    }

    /** cos(a, b) for plain vectors. */
    public static double cosine(float[] a, float[] b) {
        checkLength("cosine", a, b);
        double[] s = sums(FloatBuffer.wrap(a), FloatBuffer.wrap(b), 0, a.length);
        return cosine(s[0], s[1], s[2]);
    }

    /** Cosine of each sample of a batch [N, ...] (axis 0): double[N]. */
    public static double[] cosinePerSample(INDArray a, INDArray b) {
        Tensors.checkSameShape("per-sample cosine", a, b);
        int n = (int) a.size(0);
        int inner = n == 0 ? 0 : (int) (a.length() / n);
        FloatBuffer fa = Tensors.floats(a), fb = Tensors.floats(b);
        double[] cos = new double[n];
        for (int i = 0; i < n; i++) {
            double[] s = sums(fa, fb, i * inner, inner);
            cos[i] = cosine(s[0], s[1], s[2]);
        }
        return cos;
    }

    /** Cosine of each channel along axis 1 of [N, C, ...], over all samples and positions: double[C]. */
    public static double[] cosinePerChannel(INDArray a, INDArray b) {
        Tensors.checkSameShape("per-channel cosine", a, b);
        if (a.rank() < 2) {
            throw new IllegalArgumentException("per-channel cosine needs rank >= 2 ([N, C, ...]), got " + Tensors.shape(a));
        }
        int n = (int) a.size(0), c = (int) a.size(1);
        int inner = (int) (a.length() / Math.max(1L, (long) n * c));
        FloatBuffer fa = Tensors.floats(a), fb = Tensors.floats(b);
        double[] ab = new double[c], aa = new double[c], bb = new double[c];
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < c; ch++) {
                double[] s = sums(fa, fb, (i * c + ch) * inner, inner);
                ab[ch] += s[0];
                aa[ch] += s[1];
                bb[ch] += s[2];
            }
        }
        double[] cos = new double[c];
        for (int ch = 0; ch < c; ch++) cos[ch] = cosine(ab[ch], aa[ch], bb[ch]);
        return cos;
    }

    /**
     * Signal-to-quantization-noise ratio in dB: 10·log10(Σ signal² / Σ (signal − noisy)²); +∞ when the two
     * are equal (including both zero), −∞ when the signal is zero and the noisy version is not.
     */
    public static double sqnr(INDArray signal, INDArray noisy) {
        Tensors.checkSameShape("SQNR", signal, noisy);
        FloatBuffer s = Tensors.floats(signal), q = Tensors.floats(noisy);
        double power = 0, noise = 0;
        for (int i = 0, len = (int) signal.length(); i < len; i++) {
            double v = s.get(i);
            double e = v - q.get(i);
            power += v * v;
            noise += e * e;
        }
        if (noise == 0) return Double.POSITIVE_INFINITY;
        return 10 * Math.log10(power / noise);
    }

    /** Mean squared error Σ (a − b)² / n; 0 for empty arrays. */
    public static double mse(INDArray a, INDArray b) {
        Tensors.checkSameShape("MSE", a, b);
        int len = (int) a.length();
        if (len == 0) return 0;
        FloatBuffer fa = Tensors.floats(a), fb = Tensors.floats(b);
        double sum = 0;
        for (int i = 0; i < len; i++) {
            double e = (double) fa.get(i) - fb.get(i);
            sum += e * e;
        }
        return sum / len;
    }

    /** [Σ a·b, Σ a², Σ b²] over elements [from, from + length). */
    private static double[] sums(FloatBuffer a, FloatBuffer b, int from, int length) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = from, end = from + length; i < end; i++) {
            double x = a.get(i), y = b.get(i);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        return new double[] {ab, aa, bb};
    }

    private static double cosine(double ab, double aa, double bb) {
        if (aa == 0 && bb == 0) return 1.0;
        if (aa == 0 || bb == 0) return 0.0;
        // clamp rounding excursions past ±1
        return Math.max(-1.0, Math.min(1.0, ab / (Math.sqrt(aa) * Math.sqrt(bb))));
    }

    private static void checkLength(String what, float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException(what + ": lengths differ, " + a.length + " vs " + b.length);
        }
    }
}
