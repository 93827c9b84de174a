package io.quantcal.kernels.layer;

import static io.quantcal.kernels.layer.OrtReference.assertClose;
import static io.quantcal.kernels.layer.OrtReference.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.onnx.Graphs;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** ConvForward against ONNX Runtime running the same single Conv node. */
class ConvForwardTest {

    static final double TOL = 1e-4;

    static Map<String, Object> attrs(ConvSpec s, INDArray w) {
        Map<String, Object> a = new HashMap<>();
        a.put("strides", s.strides());
        a.put("pads", s.pads());
        a.put("dilations", s.dilations());
        a.put("group", (long) s.group());
        a.put("kernel_shape", new long[] {w.size(2), w.size(3)});
        return a;
    }

    static INDArray ortConv(INDArray x, INDArray w, INDArray b, ConvSpec s) throws Exception {
        Map<String, INDArray> inits = new LinkedHashMap<>();
        inits.put("w", w);
        if (b != null) inits.put("b", b);
        return OrtReference.runNode("Conv", attrs(s, w), x, inits);
    }

    static void check(long[] xShape, long[] wShape, boolean bias, ConvSpec spec) throws Exception {
        INDArray x = uniform(1, xShape);
        INDArray w = uniform(2, wShape);
        INDArray b = bias ? uniform(3, wShape[0]) : null;
        INDArray expected = ortConv(x, w, b, spec);
        INDArray actual = ConvForward.conv2d(x, w, b, spec);
        assertClose(expected, actual, TOL);
        assertArrayEquals(expected.shape(), ConvForward.outputShape(xShape, wShape, spec));
    }

    static ConvSpec spec(long[] strides, long[] pads, long[] dilations, int group) {
        return new ConvSpec(strides, pads, dilations, group);
    }

    /**
     * A Conv1d (x [N, C, L], w [K, C/g, k]) computed as its lifted Conv2d of height 1 ({@code QuantizableNode.as2d})
     * gives ONNX Runtime's Conv1d output: strided, dilated, asymmetrically padded, grouped.
     */
    @Test
    void conv1dAsItsLiftedConv2dOfHeightOne() throws Exception {
        io.quantcal.kernels.onnx.QuantizableNode n = new io.quantcal.kernels.onnx.QuantizableNode("c1", "Conv", "x", "w", "b",
                "y", null, null, new long[] {6, 2, 3}, 2, new long[] {2}, new long[] {1, 2}, new long[] {2}, false, 0,
                Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY);
        INDArray x = uniform(1, 2, 4, 11);
        INDArray w = uniform(2, 6, 2, 3);
        INDArray b = uniform(3, 6);
        Map<String, Object> a = new HashMap<>();
        a.put("strides", new long[] {2});
        a.put("pads", new long[] {1, 2});
        a.put("dilations", new long[] {2});
        a.put("group", 2L);
        a.put("kernel_shape", new long[] {3});
        Map<String, INDArray> inits = new LinkedHashMap<>();
        inits.put("w", w);
        inits.put("b", b);
        INDArray expected = OrtReference.runNode("Conv", a, x, inits);       // [2, 6, (11 + 3 - 5) / 2 + 1 = 5]
        io.quantcal.kernels.onnx.QuantizableNode l = n.as2d();
        ConvSpec spec = new ConvSpec(l.strides(), l.pads(), l.dilations(), l.group());
        io.quantcal.kernels.runtime.FloatTensor lifted = n.as2dInput(
                io.quantcal.kernels.runtime.FloatTensor.of("x", OrtReference.floats(x), x.shape()));
        INDArray actual = ConvForward.conv2d(Nd4j.create(lifted.data(), lifted.shape()), w.reshape(l.weightShape()), b, spec);
        assertArrayEquals(new long[] {2, 6, 1, 5}, actual.shape());
        assertClose(expected, actual.reshape(expected.shape()), TOL);
        assertArrayEquals(new long[] {6, 2, 1, 3}, l.weightShape());
        assertArrayEquals(new long[] {0, 1, 0, 2}, l.pads());
    }

    @Test
    void strideTwoWithAsymmetricPads() throws Exception {
        // ONNX order [top, left, bottom, right]: pad bottom and left only
        check(new long[] {2, 4, 7, 6}, new long[] {6, 4, 3, 3}, true,
                spec(new long[] {2, 2}, new long[] {0, 1, 1, 0}, new long[] {1, 1}, 1));
    }

    @Test
    void tfSamePadsEndOnly() throws Exception {
        check(new long[] {1, 3, 8, 8}, new long[] {5, 3, 3, 3}, true,
                spec(new long[] {2, 2}, new long[] {0, 0, 1, 1}, new long[] {1, 1}, 1));
    }

    @Test
    void dilationTwo() throws Exception {
        check(new long[] {2, 3, 9, 10}, new long[] {4, 3, 3, 3}, true, ConvSpec.of(1, 2, 2, 1));
    }

    @Test
    void rectangularKernelMixedAttributes() throws Exception {
        check(new long[] {2, 4, 11, 9}, new long[] {6, 2, 3, 2}, true,
                spec(new long[] {2, 1}, new long[] {1, 0, 2, 1}, new long[] {1, 2}, 2));
    }

    @Test
    void groupTwo() throws Exception {
        check(new long[] {2, 6, 8, 8}, new long[] {4, 3, 3, 3}, true, ConvSpec.of(1, 1, 1, 2));
    }

    @Test
    void groupTwoNoBias() throws Exception {
        check(new long[] {1, 4, 6, 7}, new long[] {6, 2, 3, 3}, false, ConvSpec.of(2, 1, 1, 2));
    }

    @Test
    void depthwise() throws Exception {
        check(new long[] {2, 5, 9, 9}, new long[] {5, 1, 3, 3}, true, ConvSpec.of(1, 1, 1, 5));
    }

    @Test
    void depthwiseChannelMultiplierTwo() throws Exception {
        check(new long[] {2, 3, 8, 7}, new long[] {6, 1, 3, 3}, true, ConvSpec.of(1, 1, 1, 3));
    }

    @Test
    void depthwiseStrideTwoAsymmetricPadsNoBias() throws Exception {
        check(new long[] {1, 4, 8, 8}, new long[] {4, 1, 3, 3}, false,
                spec(new long[] {2, 2}, new long[] {0, 0, 1, 1}, new long[] {1, 1}, 4));
    }

    @Test
    void depthwiseDilated() throws Exception {
        check(new long[] {1, 3, 9, 9}, new long[] {3, 1, 3, 3}, true, ConvSpec.of(1, 2, 2, 3));
    }

    @Test
    void noBias() throws Exception {
        check(new long[] {2, 3, 6, 6}, new long[] {4, 3, 3, 3}, false, ConvSpec.of(1, 1, 1, 1));
    }

    @Test
    void pointwiseStrideTwoOnEvenInput() throws Exception {
        // ResNet downsampling: the last row/column is never read, an implicit negative end pad
        check(new long[] {2, 8, 6, 6}, new long[] {4, 8, 1, 1}, true, ConvSpec.of(2, 0, 1, 1));
    }

    @Test
    void kernelWithStrideLeavingRemainder() throws Exception {
        check(new long[] {1, 3, 10, 10}, new long[] {2, 3, 3, 3}, true, ConvSpec.of(3, 1, 1, 1));
    }

    @Test
    void fusedReluAndClip() throws Exception {
        INDArray x = uniform(4, 2, 3, 6, 6);
        INDArray w = uniform(5, 4, 3, 3, 3);
        INDArray b = uniform(6, 4);
        ConvSpec spec = ConvSpec.of(1, 1, 1, 1);
        var conv = Graphs.node("Conv", "c", List.of("x", "w", "b"), List.of("t"), attrs(spec, w));
        var relu = Graphs.node("Relu", "r", List.of("t"), List.of("y"));
        INDArray expRelu = OrtReference.run(List.of(conv, relu),
                List.of(OrtReference.tensor("w", w), OrtReference.tensor("b", b)), x, true);
        assertClose(expRelu, ConvForward.conv2d(x, w, b, spec, Activation.RELU), TOL);

        var clip = Graphs.node("Clip", "k", List.of("t", "lo", "hi"), List.of("y"));
        INDArray expClip = OrtReference.run(List.of(conv, clip), List.of(OrtReference.tensor("w", w),
                OrtReference.tensor("b", b), Graphs.floatTensor("lo", new float[] {-0.5f}),
                Graphs.floatTensor("hi", new float[] {0.75f})), x, true);
        assertClose(expClip, ConvForward.conv2d(x, w, b, spec, Activation.clip(-0.5f, 0.75f)), TOL);
    }

    @Test
    void doubleInputsAreComputedInFloat() throws Exception {
        INDArray x = uniform(7, 1, 2, 5, 5);
        INDArray w = uniform(8, 3, 2, 3, 3);
        INDArray expected = ortConv(x, w, null, ConvSpec.of(1, 1, 1, 1));
        assertClose(expected, ConvForward.conv2d(x.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE),
                w.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE), null, ConvSpec.of(1, 1, 1, 1)), TOL);
    }

    @Test
    void mismatchedShapesNameTheTensors() {
        INDArray x = uniform(1, 1, 4, 5, 5);
        assertThrows(IllegalArgumentException.class,
                () -> ConvForward.conv2d(x, uniform(2, 2, 3, 3, 3), null, ConvSpec.defaults()));
        assertThrows(IllegalArgumentException.class,
                () -> ConvForward.conv2d(x, uniform(2, 2, 4, 3, 3), uniform(3, 3), ConvSpec.defaults()));
        assertThrows(IllegalArgumentException.class,
                () -> ConvForward.conv2d(x, uniform(2, 2, 4, 7, 7), null, ConvSpec.defaults()));
        assertThrows(IllegalArgumentException.class,
                () -> new ConvSpec(new long[] {1}, new long[] {0, 0, 0, 0}, new long[] {1, 1}, 1));
    }

    // ------------------------------------------------------------------ im2col

    static void checkPatches(long[] xShape, long[] wShape, ConvSpec spec) {
        INDArray x = uniform(11, xShape);
        INDArray w = uniform(12, wShape);
        INDArray[] cols = ConvForward.patches(x, wShape, spec);
        INDArray[] yg = new INDArray[spec.group()];
        for (int g = 0; g < yg.length; g++) {
            yg[g] = ConvForward.weightMatrix(w, spec.group(), g).mmul(cols[g]);
        }
        long[] ys = ConvForward.outputShape(xShape, wShape, spec);
        INDArray y = ConvForward.fromColumns(Nd4j.vstack(yg), ys[0], ys[2], ys[3]);
        assertClose(ConvForward.conv2d(x, w, null, spec), y, 1e-5);
    }

    @Test
    void patchesTimesWeightsIsTheConv() {
        checkPatches(new long[] {2, 3, 7, 6}, new long[] {4, 3, 3, 3}, ConvSpec.of(1, 1, 1, 1));
        checkPatches(new long[] {2, 4, 9, 8}, new long[] {6, 2, 3, 2},
                spec(new long[] {2, 1}, new long[] {0, 1, 1, 0}, new long[] {2, 1}, 2));
        checkPatches(new long[] {2, 4, 8, 8}, new long[] {4, 1, 3, 3},
                spec(new long[] {2, 2}, new long[] {0, 0, 1, 1}, new long[] {1, 1}, 4));
        checkPatches(new long[] {1, 8, 6, 6}, new long[] {4, 8, 1, 1}, ConvSpec.of(2, 0, 1, 1));
    }

    /**
     * Kernels wider than the feature map with their padding (MobileNetV3's 5x5 and ConvNeXt's 7x7 depthwise Convs on
     * the last 1x1 and 2x2 maps): some taps read only padding. EasyQuant and AdaRound stopped here with
     * "arraycopy: source index -1".
     */
    @Test
    void patchesOfKernelsWiderThanTheMap() {
        checkPatches(new long[] {2, 3, 1, 1}, new long[] {3, 1, 5, 5}, ConvSpec.of(1, 2, 1, 3));
        checkPatches(new long[] {2, 4, 2, 2}, new long[] {4, 1, 7, 7}, ConvSpec.of(1, 3, 1, 4));
        checkPatches(new long[] {1, 2, 1, 3}, new long[] {2, 2, 5, 5}, ConvSpec.of(1, 2, 1, 1));
    }

    @Test
    void patchesShapeAndPaddingZeros() {
        // one channel 2x2, 3x3 kernel pad 1: the centre tap row is the input, corners mostly padding
        INDArray x = Nd4j.create(new float[] {1, 2, 3, 4}, new long[] {1, 1, 2, 2}, 'c');
        INDArray p = ConvForward.patches(x, new long[] {1, 1, 3, 3}, ConvSpec.of(1, 1, 1, 1), 0);
        assertArrayEquals(new long[] {9, 4}, p.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4}, p.getRow(4).toFloatVector());
        assertArrayEquals(new float[] {0, 0, 0, 1}, p.getRow(0).toFloatVector());
        assertArrayEquals(new float[] {4, 0, 0, 0}, p.getRow(8).toFloatVector());
    }
}
