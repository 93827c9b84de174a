package io.quantcal.kernels.layer;

/**
 * How an ONNX weight tensor maps onto a layer problem's weight matrix W [outChannels, depth] (row c is output
 * channel c): the one place that knows each quantizable op's weight layout, both ways, so that codes found on W go
 * back to the ONNX weight unchanged in meaning.
 */
public enum WeightLayout {

    /** The ONNX weight is W itself, row-major: Conv [K, C/group, k...], Gemm with transB = 1. */
    ROWS,

    /** The ONNX weight is Wᵀ [depth, outChannels]: Gemm with transB = 0, MatMul. */
    TRANSPOSED,

    /**
     * A ConvTranspose weight [C_in, C_out, k...] (group 1) as the weight of the Conv over the zero-inserted input that
     * computes the same thing: W[o][i·K + t] = w[i][o][K − 1 − t], K the kernel's size (every spatial axis flipped
     * reverses the row-major kernel index).
     */
    CONV_TRANSPOSE;

    /** Index into the ONNX weight of W's element (row {@code r}, column {@code c}); {@code onnxShape} is the ONNX weight's. */
    public int onnxIndex(int r, int c, int outChannels, int depth, long[] onnxShape) {
        return switch (this) {
            case ROWS -> r * depth + c;
            case TRANSPOSED -> c * outChannels + r;
            case CONV_TRANSPOSE -> {
                int kernel = depth / (int) onnxShape[0];
                int i = c / kernel, t = c % kernel;
                yield (i * outChannels + r) * kernel + (kernel - 1 - t);
            }
        };
    }

    /** ONNX-layout values as W's row-major [outChannels, depth]. */
    public float[] toRows(float[] onnx, int outChannels, int depth, long[] onnxShape) {
        if (this == ROWS) return onnx;
        float[] w = new float[onnx.length];
        for (int r = 0; r < outChannels; r++) {
            for (int c = 0; c < depth; c++) w[r * depth + c] = onnx[onnxIndex(r, c, outChannels, depth, onnxShape)];
        }
        return w;
    }

    /** W's row-major [outChannels, depth] integer codes in the ONNX weight's layout. */
    public int[] toOnnx(int[] rows, int outChannels, int depth, long[] onnxShape) {
        if (this == ROWS) return rows;
        int[] t = new int[rows.length];
        for (int r = 0; r < outChannels; r++) {
            for (int c = 0; c < depth; c++) t[onnxIndex(r, c, outChannels, depth, onnxShape)] = rows[r * depth + c];
        }
        return t;
    }
}
