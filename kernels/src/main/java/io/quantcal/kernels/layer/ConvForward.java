package io.quantcal.kernels.layer;

import java.nio.FloatBuffer;
import java.util.Arrays;
import org.nd4j.enums.WeightsFormat;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.layers.convolution.Conv2D;
import org.nd4j.linalg.api.ops.impl.layers.convolution.DepthwiseConv2D;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * ONNX Conv (2-D, NCHW) in ND4J: dense, grouped and depthwise, asymmetric pads, strides, dilations, an
 * optional bias and a fused activation. Also the im2col view of the same product (AdaRound's W·X).
 *
 * <p>Which ND4J op runs: one group → {@code conv2d} with OIYX weights (the ONNX layout, taken as is;
 * oneDNN in the {@code onednn-avx2} build); depthwise (one input channel per group, any channel
 * multiplier) → {@code depthwise_conv2d}, whose weights must be [kh, kw, C, multiplier] (its OIYX option
 * fails its own shape check in 1.0.0-M2.1); other groups → one {@code conv2d} per group. ND4J's ops pad
 * symmetrically only, so asymmetric ONNX pads are applied with an explicit zero pad first. Dilated
 * convolutions bypass oneDNN (see {@link #run}).
 *
 * <p>Threads: whatever ND4J's OpenMP setting is. Outputs are float32, row-major.
 */
public final class ConvForward {

    private ConvForward() {}

    /** y = conv(x, w) + b, b nullable. */
    public static INDArray conv2d(INDArray x, INDArray w, INDArray b, ConvSpec spec) {
        return conv2d(x, w, b, spec, Activation.NONE);
    }

    /** act(conv(x, w) + b), b nullable. */
    public static INDArray conv2d(INDArray x, INDArray w, INDArray b, ConvSpec spec, Activation act) {
        long[] yShape = outputShape(x, w, b, spec);
        long n = yShape[0], k = yShape[1];
        long c = x.size(1), kh = w.size(2), kw = w.size(3);
        int group = spec.group();
        long cg = c / group, kg = k / group;

        INDArray xin = Tensors.asFloat(x);
        long padH = spec.padTop(), padW = spec.padLeft();
        if (!spec.symmetricPads()) {
            xin = Nd4j.pad(xin, new int[][] {{0, 0}, {0, 0},
                    {(int) spec.padTop(), (int) spec.padBottom()}, {(int) spec.padLeft(), (int) spec.padRight()}});
            padH = 0;
            padW = 0;
        }
        INDArray wf = Tensors.asFloat(w);
        INDArray bf = b == null ? null : Tensors.asFloat(b).reshape(k);
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, yShape);

        if (group == 1) {
            run(new Conv2D(xin, wf, bf, y, config(spec, kh, kw, padH, padW, WeightsFormat.OIYX)), spec);
        } else if (cg == 1) {
            // ONNX depthwise output channel o reads input channel o / m (m = K / C): [C·m,1,kh,kw] → [kh,kw,C,m]
            long m = k / c;
            INDArray wd = wf.reshape('c', c, m, kh, kw).permute(2, 3, 0, 1).dup('c');
            run(new DepthwiseConv2D(xin, wd, bf, y, config(spec, kh, kw, padH, padW, WeightsFormat.YXIO)), spec);
        } else {
            Conv2DConfig cfg = config(spec, kh, kw, padH, padW, WeightsFormat.OIYX);
            for (int g = 0; g < group; g++) {
                INDArray xg = xin.get(NDArrayIndex.all(), NDArrayIndex.interval(g * cg, (g + 1) * cg),
                        NDArrayIndex.all(), NDArrayIndex.all()).dup('c');
                INDArray wg = wf.get(NDArrayIndex.interval(g * kg, (g + 1) * kg),
                        NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all()).dup('c');
                INDArray bg = bf == null ? null : bf.get(NDArrayIndex.interval(g * kg, (g + 1) * kg)).dup();
                INDArray yg = Nd4j.createUninitialized(DataType.FLOAT, n, kg, yShape[2], yShape[3]);
                run(new Conv2D(xg, wg, bg, yg, cfg), spec);
                y.get(NDArrayIndex.all(), NDArrayIndex.interval(g * kg, (g + 1) * kg),
                        NDArrayIndex.all(), NDArrayIndex.all()).assign(yg);
            }
        }
        return act.applyInPlace(y);
    }

    /** Output shape [N, K, OH, OW] of a Conv, after checking x, w and b against each other and the spec. */
    public static long[] outputShape(INDArray x, INDArray w, INDArray b, ConvSpec spec) {
        Tensors.checkRank("Conv input x [N,C,H,W]", x, 4);
        Tensors.checkRank("Conv weight w [K,C/group,kh,kw]", w, 4);
        long[] y = outputShape(x.shape(), w.shape(), spec);
        if (b != null && b.length() != y[1]) {
            throw new IllegalArgumentException("Conv bias must have K = " + y[1] + " values, got shape " + Tensors.shape(b));
        }
        return y;
    }

    /** Output shape [N, K, OH, OW] for input shape [N,C,H,W] and weight shape [K,C/group,kh,kw]. */
    public static long[] outputShape(long[] xShape, long[] wShape, ConvSpec spec) {
        if (xShape.length != 4 || wShape.length != 4) {
            throw new IllegalArgumentException("Conv needs x [N,C,H,W] and w [K,C/group,kh,kw], got "
                    + Arrays.toString(xShape) + " and " + Arrays.toString(wShape));
        }
        long c = xShape[1], k = wShape[0];
        int group = spec.group();
        if (c % group != 0 || wShape[1] * group != c || k % group != 0) {
            throw new IllegalArgumentException("Conv with group " + group + ": input " + Arrays.toString(xShape)
                    + " and weight " + Arrays.toString(wShape) + " need C = group·w[1] and K divisible by group");
        }
        long[] ohw = spec.outputSize(xShape[2], xShape[3], wShape[2], wShape[3]);
        return new long[] {xShape[0], k, ohw[0], ohw[1]};
    }

    /**
     * Runs a conv2d or depthwise_conv2d op. With dilation > 1 their oneDNN helpers in 1.0.0-M2.1 fail on
     * some shapes ("could not create a descriptor for a dilated convolution": the end padding is sized
     * without the dilation), so dilated convolutions always run ND4J's generic implementation (slower) by
     * turning helpers off for this one call.
     */
    private static void run(DynamicCustomOp op, ConvSpec spec) {
        if (spec.dilationH() == 1 && spec.dilationW() == 1) {
            Nd4j.exec(op);
            return;
        }
        try (OpContext ctx = Nd4j.getExecutioner().buildContext()) {
            ctx.setInputArrays(op.inputArguments());
            ctx.setOutputArrays(op.outputArguments());
            ctx.setIArguments(op.iArgs());
            ctx.allowHelpers(false);
            Nd4j.getExecutioner().exec(op, ctx);
        } catch (Exception e) {
            throw e instanceof RuntimeException r ? r : new IllegalStateException("conv2d failed for " + spec, e);
        }
    }

    private static Conv2DConfig config(ConvSpec spec, long kh, long kw, long padH, long padW, WeightsFormat wf) {
        return Conv2DConfig.builder().kH(kh).kW(kw).sH(spec.strideH()).sW(spec.strideW()).pH(padH).pW(padW)
                .dH(spec.dilationH()).dW(spec.dilationW()).paddingMode(PaddingMode.VALID)
                .dataFormat(Conv2DConfig.NCHW).weightsFormat(wf).build();
    }

    // ---------------------------------------------------------------------------------------------
    // im2col: Conv as a matrix product per group, Y_g = W_g · X_g

    /**
     * The patch (im2col) matrix of group {@code g}: [C/group·kh·kw, N·OH·OW], rows ordered (c, ky, kx)
     * as {@link #weightMatrix} flattens the weight, columns ordered (n, oy, ox); zero where a tap falls in
     * the padding. {@code weightMatrix(w, group, g).mmul(patches(x, w.shape(), spec, g))} is group g's
     * output channels before bias, in {@link #fromColumns} layout.
     */
    public static INDArray patches(INDArray x, long[] wShape, ConvSpec spec, int g) {
        return patches(x, wShape, spec, g, null);
    }

    /**
     * {@link #patches(INDArray, long[], ConvSpec, int)} written into {@code out} when it is given (a c-order float
     * [C/group·kh·kw, N·OH·OW] array, which search loops reuse instead of allocating one per call).
     */
    public static INDArray patches(INDArray x, long[] wShape, ConvSpec spec, int g, INDArray out) {
        Tensors.checkRank("Conv input x [N,C,H,W]", x, 4);
        long[] yShape = outputShape(x.shape(), wShape, spec);
        if (g < 0 || g >= spec.group()) {
            throw new IllegalArgumentException("group index " + g + " outside [0, " + spec.group() + ")");
        }
        int n = (int) yShape[0], oh = (int) yShape[2], ow = (int) yShape[3];
        int c = (int) x.size(1), h = (int) x.size(2), w = (int) x.size(3);
        int cg = (int) wShape[1], kh = (int) wShape[2], kw = (int) wShape[3];
        long rows = (long) cg * kh * kw;
        long cols = (long) n * oh * ow;
        if (rows * cols > Integer.MAX_VALUE - 8 || x.length() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("patch matrix " + rows + "x" + cols + " (or its input " + Tensors.shape(x)
                    + ") exceeds 2^31 elements; subsample the batch or the positions");
        }
        FloatBuffer xb = Tensors.floats(x);
        if (out == null) {
            out = Nd4j.createUninitialized(DataType.FLOAT, rows, cols);
        } else if (out.dataType() != DataType.FLOAT || out.ordering() != 'c' || out.rank() != 2 || out.size(0) != rows
                || out.size(1) != cols || out.offset() != 0) {
            throw new IllegalArgumentException("patch matrix needs a c-order float [" + rows + ", " + cols + "] array, got "
                    + out.dataType() + " " + Tensors.shape(out) + " order " + out.ordering());
        }
        FloatBuffer ob = out.data().asNioFloat();
        int sh = (int) spec.strideH(), sw = (int) spec.strideW();
        int dh = (int) spec.dilationH(), dw = (int) spec.dilationW();
        int pt = (int) spec.padTop(), pl = (int) spec.padLeft();
        int hw = h * w;
        float[] planes = new float[n * hw];   // channel `channel` of every sample
        float[] row = new float[(int) cols];
        int r = 0;
        for (int ci = 0; ci < cg; ci++) {
            int channel = g * cg + ci;
            for (int s = 0; s < n; s++) xb.get((int) (((long) s * c + channel) * hw), planes, s * hw, hw);
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++, r++) {
                    int off = j * dw - pl;
                    // the ox whose tap column ox·sw + off lies inside [0, w)
                    int lo = Math.min(ow, Math.max(0, Math.floorDiv(-off + sw - 1, sw)));
                    int hi = Math.max(lo, Math.min(ow, Math.floorDiv(w - 1 - off, sw) + 1));
                    for (int s = 0; s < n; s++) {
                        for (int oy = 0; oy < oh; oy++) {
                            int o = (s * oh + oy) * ow;
                            int iy = oy * sh - pt + i * dh;
                            if (iy < 0 || iy >= h) {
                                Arrays.fill(row, o, o + ow, 0f);
                                continue;
                            }
                            Arrays.fill(row, o, o + lo, 0f);
                            Arrays.fill(row, o + hi, o + ow, 0f);
                            int src = s * hw + iy * w + off;
                            // a tap that reads only padding (hi == lo, e.g. a 5x5 kernel's outer column on a 1x1
                            // map) copies nothing; its src + lo may be negative, which arraycopy refuses even for 0
                            if (sw == 1) {
                                if (hi > lo) System.arraycopy(planes, src + lo, row, o + lo, hi - lo);
                            } else {
                                for (int ox = lo; ox < hi; ox++) row[o + ox] = planes[src + ox * sw];
                            }
                        }
                    }
                    ob.put((int) (r * cols), row);
                }
            }
        }
        return out;
    }

    /** {@link #patches(INDArray, long[], ConvSpec, int)} for every group, in group order. */
    public static INDArray[] patches(INDArray x, long[] wShape, ConvSpec spec) {
        INDArray[] p = new INDArray[spec.group()];
        for (int g = 0; g < p.length; g++) p[g] = patches(x, wShape, spec, g);
        return p;
    }

    /** Group g's weights as the left factor of W·X: [K/group, C/group·kh·kw] (row-major copy). */
    public static INDArray weightMatrix(INDArray w, int group, int g) {
        Tensors.checkRank("Conv weight w [K,C/group,kh,kw]", w, 4);
        long k = w.size(0);
        if (group < 1 || k % group != 0 || g < 0 || g >= group) {
            throw new IllegalArgumentException("weight " + Tensors.shape(w) + ": group index " + g + " of " + group);
        }
        long kg = k / group;
        INDArray wg = w.get(NDArrayIndex.interval(g * kg, (g + 1) * kg), NDArrayIndex.all(), NDArrayIndex.all(),
                NDArrayIndex.all());
        return Tensors.asFloat(wg).dup('c').reshape('c', kg, w.size(1) * w.size(2) * w.size(3));
    }

    /** A column-layout result [K, N·OH·OW] (columns ordered (n, oy, ox)) as NCHW [N, K, OH, OW]. */
    public static INDArray fromColumns(INDArray y, long n, long oh, long ow) {
        Tensors.checkRank("column-layout output [K, N·OH·OW]", y, 2);
        if (y.size(1) != n * oh * ow) {
            throw new IllegalArgumentException("column-layout output " + Tensors.shape(y) + " does not have N·OH·OW = "
                    + n * oh * ow + " columns");
        }
        return y.reshape('c', y.size(0), n, oh, ow).permute(1, 0, 2, 3).dup('c');
    }
}
