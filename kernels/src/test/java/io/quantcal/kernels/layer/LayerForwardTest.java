package io.quantcal.kernels.layer;

import static io.quantcal.kernels.layer.OrtReference.assertClose;
import static io.quantcal.kernels.layer.OrtReference.uniform;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The fake-quantized forward pass equals ONNX Runtime running the float layer on fake-quantized tensors,
 * and equals a QDQ graph (QuantizeLinear/DequantizeLinear feeding the float layer) run without fusion.
 */
class LayerForwardTest {

    static final double TOL = 1e-4;

    /** uint8 affine over the tensor's range, as a min/max calibrator gives. */
    static QuantParams activationParams(INDArray x) {
        return AffineQuantizer.fromRange(QuantGrid.of(8, false), x.minNumber().doubleValue(), x.maxNumber().doubleValue());
    }

    /** int8 symmetric per channel along {@code axis}, clip = max |w| of the channel (deliberately shrunk). */
    static QuantParams weightParams(INDArray w, int axis) {
        int[] others = new int[w.rank() - 1];
        for (int d = 0, i = 0; d < w.rank(); d++) if (d != axis) others[i++] = d;
        double[] clips = Transforms.abs(w, true).max(others).toDoubleVector();
        for (int c = 0; c < clips.length; c++) clips[c] *= 0.8; // some clipping too
        return SymmetricQuantizer.fromClips(8, true, axis, clips);
    }

    /** The layer on inputs "xd", "wd" (and initializer "b"), then its bias Add and activation, ending in "y". */
    static List<NodeProto> layerNodes(LayerOp op, INDArray w, boolean bias) {
        List<NodeProto> nodes = new ArrayList<>();
        List<String> in = new ArrayList<>(List.of("xd", "wd"));
        if (bias && !(op instanceof LayerOp.MatMul)) in.add("b");
        Map<String, Object> attrs = new HashMap<>();
        if (op instanceof LayerOp.Conv c) attrs.putAll(ConvForwardTest.attrs(c.spec(), w));
        if (op instanceof LayerOp.Gemm g) attrs.put("transB", g.transB() ? 1L : 0L);
        nodes.add(Graphs.node(op.opType(), "layer", in, List.of("t0"), attrs));
        String t = "t0";
        if (bias && op instanceof LayerOp.MatMul) {
            nodes.add(Graphs.node("Add", "bias", List.of(t, "b"), List.of("t1")));
            t = "t1";
        }
        switch (op.activation().kind()) {
            case NONE -> nodes.add(Graphs.node("Identity", "act", List.of(t), List.of("y")));
            case RELU -> nodes.add(Graphs.node("Relu", "act", List.of(t), List.of("y")));
            case CLIP -> throw new UnsupportedOperationException("not used here");
        }
        return nodes;
    }

    static INDArray ortFloat(LayerOp op, INDArray x, INDArray w, INDArray b) throws Exception {
        List<NodeProto> nodes = new ArrayList<>();
        nodes.add(Graphs.node("Identity", "ix", List.of("x"), List.of("xd")));
        nodes.add(Graphs.node("Identity", "iw", List.of("w"), List.of("wd")));
        nodes.addAll(layerNodes(op, w, b != null));
        List<TensorProto> inits = new ArrayList<>(List.of(OrtReference.tensor("w", w)));
        if (b != null) inits.add(OrtReference.tensor("b", b));
        return OrtReference.run(nodes, inits, x, true);
    }

    /** x → Q → DQ, int8 w → DQ(axis), then the float layer; graph optimizations off so nothing fuses. */
    static INDArray ortQdq(LayerOp op, INDArray x, INDArray w, INDArray b, QuantParams xq, QuantParams wq)
            throws Exception {
        List<NodeProto> nodes = new ArrayList<>();
        List<TensorProto> inits = new ArrayList<>();
        inits.add(scale("xs", xq));
        inits.add(zeroPoint("xz", xq, new int[] {xq.zeroPoint(0)}));
        nodes.add(Graphs.node("QuantizeLinear", "qx", List.of("x", "xs", "xz"), List.of("xq")));
        nodes.add(Graphs.node("DequantizeLinear", "dqx", List.of("xq", "xs", "xz"), List.of("xd")));
        int[] codes = FakeQuant.quantize(OrtReference.floats(w), w.shape(), wq);
        inits.add(wq.grid().signed() ? Graphs.int8Tensor("wq", codes, w.shape()) : Graphs.uint8Tensor("wq", codes, w.shape()));
        inits.add(scale("ws", wq));
        inits.add(zeroPoint("wz", wq, wq.zeroPoint()));
        Map<String, Object> axis = wq.perChannel() ? Map.of("axis", (long) wq.axis()) : Map.of();
        nodes.add(Graphs.node("DequantizeLinear", "dqw", List.of("wq", "ws", "wz"), List.of("wd"), axis));
        if (b != null) inits.add(OrtReference.tensor("b", b));
        nodes.addAll(layerNodes(op, w, b != null));
        return OrtReference.run(nodes, inits, x, false);
    }

    static TensorProto scale(String name, QuantParams p) {
        float[] s = new float[p.channels()];
        for (int c = 0; c < s.length; c++) s[c] = (float) p.scale(c);
        return p.perChannel() ? Graphs.floatTensor(name, s, s.length) : Graphs.floatTensor(name, s);
    }

    static TensorProto zeroPoint(String name, QuantParams p, int[] z) {
        long[] dims = p.perChannel() ? new long[] {z.length} : new long[0];
        return p.grid().signed() ? Graphs.int8Tensor(name, z, dims) : Graphs.uint8Tensor(name, z, dims);
    }

    static void check(LayerOp op, INDArray x, INDArray w, INDArray b, QuantParams xq, QuantParams wq) throws Exception {
        INDArray actual = LayerForward.forward(op, x, w, b, xq, wq);
        INDArray onFakeQuant = ortFloat(op, FakeQuant.apply(x, xq), FakeQuant.apply(w, wq), b);
        assertClose(onFakeQuant, actual, TOL);
        assertClose(ortQdq(op, x, w, b, xq, wq), actual, TOL);
        // and quantization did change something, so the test is not vacuous
        INDArray fp = LayerForward.forward(op, x, w, b);
        assertTrue(Metrics.mse(fp, actual) > 0, "fake quantization changed nothing");
        assertTrue(Metrics.cosine(fp, actual) > 0.95, "8-bit output far from float");
    }

    @Test
    void convPerChannelWeights() throws Exception {
        INDArray x = uniform(1, 2, 4, 9, 8), w = uniform(2, 6, 4, 3, 3), b = uniform(3, 6);
        ConvSpec spec = new ConvSpec(new long[] {2, 2}, new long[] {0, 1, 1, 0}, new long[] {1, 1}, 1);
        check(LayerOp.conv(spec), x, w, b, activationParams(x), weightParams(w, 0));
    }

    @Test
    void depthwiseConvPerTensorWeights() throws Exception {
        INDArray x = uniform(4, 2, 4, 7, 7), w = uniform(5, 4, 1, 3, 3), b = uniform(6, 4);
        QuantParams wq = SymmetricQuantizer.fromClip(8, true, 0.9);
        check(LayerOp.conv(ConvSpec.of(1, 1, 1, 4)), x, w, b, activationParams(x), wq);
    }

    @Test
    void gemmTransBPerChannelAndRelu() throws Exception {
        INDArray x = uniform(7, 6, 20), w = uniform(8, 9, 20), b = uniform(9, 9);
        check(new LayerOp.Gemm(true, Activation.RELU), x, w, b, activationParams(x), weightParams(w, 0));
    }

    @Test
    void gemmPerChannelAlongAxisOne() throws Exception {
        INDArray x = uniform(10, 5, 12), w = uniform(11, 12, 7), b = uniform(12, 7);
        check(LayerOp.gemm(false), x, w, b, activationParams(x), weightParams(w, 1));
    }

    @Test
    void matmulRankThreePerChannel() throws Exception {
        INDArray x = uniform(13, 2, 4, 16), w = uniform(14, 16, 6), b = uniform(15, 6);
        check(LayerOp.matmul(), x, w, b, activationParams(x), weightParams(w, 1));
    }

    @Test
    void nullParamsLeaveThatSideInFloat() throws Exception {
        INDArray x = uniform(16, 3, 10), w = uniform(17, 10, 4);
        QuantParams xq = activationParams(x), wq = weightParams(w, 1);
        LayerOp op = LayerOp.gemm(false);
        assertClose(LayerForward.forward(op, x, w, null), LayerForward.forward(op, x, w, null, null, null), 0);
        assertClose(GemmForward.gemm(FakeQuant.apply(x, xq), w, null, false),
                LayerForward.forward(op, x, w, null, xq, null), 0);
        assertClose(GemmForward.gemm(x, FakeQuant.apply(w, wq), null, false),
                LayerForward.forward(op, x, w, null, null, wq), 0);
    }
}
