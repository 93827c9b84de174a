package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.layer.WeightLayout;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Each op kind's facts against hand-worked values, and the facts that must agree across a kind's methods. */
class OpKindTest {

    private static final double INF = Double.POSITIVE_INFINITY;
    private static final long[] NONE = new long[0];

    private static QuantizableNode conv(long[] w, int group, long[] strides, long[] pads, long[] dilations) {
        return new QuantizableNode("conv", "Conv", "x", "w", null, "y", null, null, w, group, strides, pads, dilations,
                false, 0, -INF, INF);
    }

    private static QuantizableNode convTranspose(long[] w, long[] strides, long[] pads, long[] dilations) {
        return new QuantizableNode("deconv", "ConvTranspose", "x", "w", null, "y", null, null, w, 1, strides, pads, dilations,
                false, 1, -INF, INF);
    }

    private static QuantizableNode gemm(long[] w, boolean transB) {
        return new QuantizableNode("fc", "Gemm", "x", "w", null, "y", "Relu", "r", w, 1, NONE, NONE, NONE, transB,
                transB ? 0 : 1, 0, INF);
    }

    private static QuantizableNode matMul(long[] w) {
        return new QuantizableNode("mm", "MatMul", "x", "w", null, "y", null, null, w, 1, NONE, NONE, NONE, false, 1, -INF, INF);
    }

    /** One node of each kind and shape the passes meet: grouped, depthwise, 1-D, transposed, both Gemm layouts. */
    private static List<QuantizableNode> nodes() {
        return List.of(
                conv(new long[] {8, 4, 3, 3}, 1, new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {1, 1}),
                conv(new long[] {8, 2, 3, 3}, 2, new long[] {2, 2}, new long[] {0, 1, 0, 1}, new long[] {1, 1}),
                conv(new long[] {8, 1, 3, 3}, 8, new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {2, 2}),
                conv(new long[] {6, 4, 5}, 1, new long[] {2}, new long[] {2, 1}, new long[] {1}),
                convTranspose(new long[] {4, 6, 3, 2}, new long[] {2, 2}, new long[] {1, 0, 1, 0}, new long[] {1, 1}),
                convTranspose(new long[] {4, 6, 3}, new long[] {2}, new long[] {1, 1}, new long[] {1}),
                gemm(new long[] {16, 8}, true),
                gemm(new long[] {8, 16}, false),
                matMul(new long[] {16, 5}));
    }

    @Test
    void everyQuantizedOpTypeHasItsKindAndNoOtherOpHasOne() {
        assertEquals(OpKind.OP_TYPES, OpKind.ALL.stream().map(OpKind::opType).collect(Collectors.toSet()));
        for (OpKind k : OpKind.ALL) assertSame(k, OpKind.of(k.opType()));
        for (String other : List.of("Relu", "Add", "ConvInteger", "QLinearConv", "MatMulInteger", "conv")) {
            assertNull(OpKind.of(other), other);
        }
        assertEquals(Set.of("Conv", "ConvTranspose", "Gemm", "MatMul"), QuantizableNode.OP_TYPES);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new QuantizableNode("r", "Relu", "x",
                "w", null, "y", null, null, new long[] {2, 2}, 1, NONE, NONE, NONE, false, 0, -INF, INF));
        assertTrue(e.getMessage().contains("node r: op type Relu is not one quantcal quantizes"), e.getMessage());
    }

    @Test
    void reductionLengthsAreTheProductsOneOutputSums() {
        // hand-worked: C/group·k… for a Conv, C_in·k… for a ConvTranspose (group 1), K for Gemm and MatMul
        long[] expected = {4 * 9, 2 * 9, 9, 4 * 5, 4 * 3 * 2, 4 * 3, 8, 8, 16};
        List<QuantizableNode> ns = nodes();
        for (int i = 0; i < ns.size(); i++) {
            QuantizableNode n = ns.get(i);
            assertEquals(expected[i], n.kind().reductionLength(n), n.toString());
        }
    }

    @Test
    void layoutsPutRowRInOutputChannelROnTheWeightAxisAndRoundTrip() {
        for (QuantizableNode n : nodes()) {
            long[] ws = n.weightShape();
            int count = 1;
            for (long d : ws) count *= (int) d;
            WeightLayout layout = n.kind().layout(n);
            int out = n.outputChannels();
            int depth = (int) n.kind().reductionLength(n);
            assertEquals(count, out * depth, n.toString());
            int[] strides = new int[ws.length];
            strides[ws.length - 1] = 1;
            for (int a = ws.length - 2; a >= 0; a--) strides[a] = strides[a + 1] * (int) ws[a + 1];
            boolean[] seen = new boolean[count];
            for (int r = 0; r < out; r++) {
                for (int c = 0; c < depth; c++) {
                    int idx = layout.onnxIndex(r, c, out, depth, ws);
                    assertEquals(r, (idx / strides[n.weightAxis()]) % ws[n.weightAxis()],
                            n + ": row " + r + " column " + c + " lands in another output channel");
                    assertTrue(!seen[idx], n + ": two elements of W map to ONNX index " + idx);
                    seen[idx] = true;
                }
            }
            float[] onnx = new float[count];
            int[] codes = new int[count];
            for (int i = 0; i < count; i++) {
                onnx[i] = i;
                codes[i] = i;
            }
            float[] rows = layout.toRows(onnx, out, depth, ws);
            int[] back = layout.toOnnx(java.util.Arrays.stream(toInts(rows)).toArray(), out, depth, ws);
            assertArrayEquals(codes, back, n.toString());
        }
    }

    private static int[] toInts(float[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) r[i] = (int) v[i];
        return r;
    }

    @Test
    void theLoweredNodesForwardIsTheLayerOpThatComputesIt() {
        for (QuantizableNode n : nodes()) {
            QuantizableNode low = n.as2d();
            LayerOp op = LayerOp.of(n);
            assertEquals(low.opType(), op.opType(), n.toString());
            assertEquals(low.weightAxis(), op.weightAxis(), n.toString());
            assertEquals(n.kind().reductionLength(n), op.reductionLength(low.weightShape()), n.toString());
            assertEquals(n.outputChannels(), low.outputChannels(), n.toString());
        }
        // Conv1d [6, 4, 5], stride 2, pads [2, 1] → Conv2d [6, 4, 1, 5], strides [1, 2], pads [0, 2, 0, 1]
        LayerOp.Conv c1 = assertInstanceOf(LayerOp.Conv.class, LayerOp.of(nodes().get(3)));
        assertArrayEquals(new long[] {6, 4, 1, 5}, nodes().get(3).as2d().weightShape());
        assertArrayEquals(new long[] {1, 2}, c1.spec().strides());
        assertArrayEquals(new long[] {0, 2, 0, 1}, c1.spec().pads());
        // ConvTranspose [4, 6, 3, 2], pads [1, 0, 1, 0] → Conv [6, 4, 3, 2], stride 1, pads (k − 1) − p: [1, 1, 1, 1]
        QuantizableNode t = nodes().get(4).as2d();
        assertEquals("Conv", t.opType());
        assertArrayEquals(new long[] {6, 4, 3, 2}, t.weightShape());
        assertArrayEquals(new long[] {1, 1, 1, 1}, t.pads());
        assertArrayEquals(new long[] {1, 1}, t.strides());
        assertEquals(0, t.weightAxis());
        LayerOp.Gemm g = assertInstanceOf(LayerOp.Gemm.class, LayerOp.of(nodes().get(6)));
        assertTrue(g.transB());
        assertEquals(Activation.RELU, g.activation());
        assertInstanceOf(LayerOp.MatMul.class, LayerOp.of(nodes().get(8)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpKind.CONV_TRANSPOSE.forward(nodes().get(4), Activation.NONE));
        assertTrue(e.getMessage().contains("as2d first"), e.getMessage());
    }

    @Test
    void layerOpsGiveTheirOutputShapesAndRefuseMismatches() {
        assertArrayEquals(new long[] {2, 16}, LayerOp.gemm(true).outputShape(new long[] {2, 8}, new long[] {16, 8}));
        assertArrayEquals(new long[] {2, 16}, LayerOp.gemm(false).outputShape(new long[] {2, 8}, new long[] {8, 16}));
        assertArrayEquals(new long[] {2, 3, 5}, LayerOp.matmul().outputShape(new long[] {2, 3, 16}, new long[] {16, 5}));
        LayerOp conv = LayerOp.of(nodes().get(0));
        assertArrayEquals(new long[] {1, 8, 6, 6}, conv.outputShape(new long[] {1, 4, 6, 6}, new long[] {8, 4, 3, 3}));
        assertEquals(1, conv.outputChannelAxis(4));
        assertEquals(2, LayerOp.matmul().outputChannelAxis(3));
        IllegalArgumentException k = assertThrows(IllegalArgumentException.class,
                () -> LayerOp.matmul().outputShape(new long[] {2, 15}, new long[] {16, 5}));
        assertEquals("MatMul: input [2, 15] and weight [16, 5] disagree on K", k.getMessage());
        IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                () -> LayerOp.gemm(false).outputShape(new long[] {2, 3, 8}, new long[] {8, 16}));
        assertEquals("Gemm input must be [N,K], got [2, 3, 8]", rank.getMessage());
        IllegalArgumentException w = assertThrows(IllegalArgumentException.class,
                () -> LayerOp.gemm(false).outputShape(new long[] {2, 3, 8}, new long[] {8, 16, 1}));
        assertEquals("Gemm weight must have rank 2, got [8, 16, 1]", w.getMessage());
    }

    @Test
    void onlyConvsAreDataFreeAndTakeBatchNormOnTheirOutputChannelAxis() {
        assertTrue(OpKind.CONV.dataFree());
        for (OpKind k : List.of(OpKind.CONV_TRANSPOSE, OpKind.GEMM, OpKind.MATMUL)) assertTrue(!k.dataFree(), k.opType());
        onnx.Onnx.NodeProto convT = Graphs.node("ConvTranspose", "d", List.of("x", "w"), List.of("y"), java.util.Map.of());
        onnx.Onnx.NodeProto groupedT = Graphs.node("ConvTranspose", "d", List.of("x", "w"), List.of("y"), java.util.Map.of("group", 2L));
        onnx.Onnx.NodeProto c = Graphs.node("Conv", "c", List.of("x", "w"), List.of("y"), java.util.Map.of("group", 4L));
        assertEquals(0, OpKind.CONV.batchNormAxis(c));
        assertEquals(1, OpKind.CONV_TRANSPOSE.batchNormAxis(convT));
        assertEquals(-1, OpKind.CONV_TRANSPOSE.batchNormAxis(groupedT));
        assertEquals(-1, OpKind.GEMM.batchNormAxis(c));
        assertEquals(-1, OpKind.MATMUL.batchNormAxis(c));
    }
}
