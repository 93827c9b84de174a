package io.quantcal.kernels.quant;

/**
 * Symmetric uniform quantization with clip c and step s (the convention of EasyQuant, LSQ and TensorRT):
 * a signed grid is the narrow range [−(2^(b−1)−1), 2^(b−1)−1] with s = c / (2^(b−1)−1), covering [−c, c];
 * an unsigned grid (for non-negative tensors, e.g. after ReLU) is [0, 2^b−1] with s = c / (2^b−1),
 * covering [0, c]. The zero point is 0 in both cases.
 */
public final class SymmetricQuantizer {

    private SymmetricQuantizer() {}

    /** The grid a symmetric quantizer of {@code bits} uses. */
    public static QuantGrid grid(int bits, boolean signed) {
        return new QuantGrid(bits, signed, signed);
    }

    /** Step for clip c: s = c / qmax. */
    public static double step(QuantGrid grid, double clip) {
        return clip / grid.qmax();
    }

    /** Parameters for clip c; a zero clip (all-zero tensor) gets step 1. */
    public static QuantParams fromClip(int bits, boolean signed, double clip) {
        QuantGrid g = grid(bits, signed);
        return QuantParams.perTensor(g, true, safeStep(g, clip), 0);
    }

    /** Per-channel clips along {@code axis}. */
    public static QuantParams fromClips(int bits, boolean signed, int axis, double[] clips) {
        QuantGrid g = grid(bits, signed);
        double[] s = new double[clips.length];
        for (int c = 0; c < clips.length; c++) s[c] = safeStep(g, clips[c]);
        return new QuantParams(g, true, axis, s, new int[clips.length]);
    }

    /** Clip c = max(|rmin|, |rmax|) of a real range: the symmetric grid that covers it. */
    public static double clipOf(double rmin, double rmax) {
        AffineQuantizer.checkRange(rmin, rmax);
        return Math.max(Math.abs(rmin), Math.abs(rmax));
    }

    private static double safeStep(QuantGrid g, double clip) {
        if (!Double.isFinite(clip) || clip < 0) {
            throw new IllegalArgumentException("clip must be finite and >= 0, got " + clip);
        }
        double s = (float) step(g, clip);
        return s >= Float.MIN_NORMAL ? s : 1.0;
    }
}
