package io.quantcal.kernels.dfq;

/**
 * Channel arithmetic on a Conv weight stored row-major as [C_out, C_in/group, k...]: output channel o
 * belongs to group g = o / (C_out/group) and reads input channels g·(C_in/group) .. (g+1)·(C_in/group) − 1.
 * A depthwise Conv (group = C_in, one input channel per group) is the case where input channel i feeds
 * exactly output channels i·m .. (i+1)·m − 1 (m the channel multiplier).
 */
final class ConvWeights {

    private ConvWeights() {}

    static int outputChannels(long[] shape) {
        return (int) shape[0];
    }

    static int inputChannels(long[] shape, int group) {
        return (int) shape[1] * group;
    }

    /** Elements per (output channel, input channel) slice: the kernel's spatial size. */
    static int kernelSize(long[] shape) {
        long k = 1;
        for (int d = 2; d < shape.length; d++) k *= shape[d];
        return (int) k;
    }

    /** Visits every element of the weight with its output channel and (global) input channel. */
    interface ElementVisitor {
        void visit(int index, int outputChannel, int inputChannel);
    }

    static void forEach(long[] shape, int group, ElementVisitor v) {
        int cout = outputChannels(shape);
        int cpg = (int) shape[1];
        int opg = cout / group;
        int k = kernelSize(shape);
        for (int o = 0; o < cout; o++) {
            int g = o / opg;
            for (int ci = 0; ci < cpg; ci++) {
                int i = g * cpg + ci;
                int base = (o * cpg + ci) * k;
                for (int p = 0; p < k; p++) v.visit(base + p, o, i);
            }
        }
    }

    /** r₁ᵢ = max |W| over output channel i (Nagel et al. 2019, §4.1: the range of layer 1's channel i). */
    static double[] outputChannelRanges(double[] w, long[] shape, int group) {
        double[] r = new double[outputChannels(shape)];
        forEach(shape, group, (idx, o, i) -> r[o] = Math.max(r[o], Math.abs(w[idx])));
        return r;
    }

    /** r₂ᵢ = max |W| over everything input channel i multiplies (§4.1: layer 2's range of channel i). */
    static double[] inputChannelRanges(double[] w, long[] shape, int group) {
        double[] r = new double[inputChannels(shape, group)];
        forEach(shape, group, (idx, o, i) -> r[i] = Math.max(r[i], Math.abs(w[idx])));
        return r;
    }

    static void scaleOutputChannels(double[] w, long[] shape, int group, double[] factor) {
        forEach(shape, group, (idx, o, i) -> w[idx] *= factor[o]);
    }

    static void scaleInputChannels(double[] w, long[] shape, int group, double[] factor) {
        forEach(shape, group, (idx, o, i) -> w[idx] *= factor[i]);
    }

    /**
     * Σᵢ Σₖ Wⱼᵢₖ · vᵢ for every output channel j: the response of the layer to an input that is the
     * constant vᵢ on channel i at every position the kernel reads (no zero padding under the kernel).
     */
    static double[] applyToConstant(float[] w, long[] shape, int group, double[] v) {
        double[] y = new double[outputChannels(shape)];
        forEach(shape, group, (idx, o, i) -> y[o] += w[idx] * v[i]);
        return y;
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }

    static float[] toFloat(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return f;
    }
}
