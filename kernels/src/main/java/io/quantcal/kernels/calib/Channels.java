package io.quantcal.kernels.calib;

/** Splits a row-major tensor into its slices along one axis. */
public final class Channels {

    private Channels() {}

    public static float[][] split(float[] x, long[] shape, int axis) {
        if (axis < 0 || axis >= shape.length) {
            throw new IllegalArgumentException("axis " + axis + " outside a tensor of rank " + shape.length);
        }
        int channels = (int) shape[axis];
        long inner = 1;
        for (int d = axis + 1; d < shape.length; d++) inner *= shape[d];
        long outer = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        int run = (int) inner;
        float[][] out = new float[channels][(int) (outer * inner)];
        for (int o = 0; o < outer; o++) {
            for (int c = 0; c < channels; c++) {
                System.arraycopy(x, (int) ((o * channels + c) * inner), out[c], o * run, run);
            }
        }
        return out;
    }
}
