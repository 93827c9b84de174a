package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantizableNodeTest {

    private static final double INF = Double.POSITIVE_INFINITY;

    private static QuantizableNode only(OnnxModel m) {
        List<QuantizableNode> q = m.quantizableNodes();
        assertEquals(1, q.size(), q.toString());
        return q.get(0);
    }

    @Test
    void smallCnnListsConvGemmAndMatMulInGraphOrder() {
        OnnxModel m = TestModels.smallCnn(1);
        List<QuantizableNode> q = m.quantizableNodes();
        assertEquals(List.of("conv1", "dw", "pw", "fc1", "fc2"), q.stream().map(QuantizableNode::name).toList());

        QuantizableNode conv1 = q.get(0);
        assertEquals(new QuantizableNode("conv1", "Conv", "input", "conv1.weight", "conv1.bias", "c1", null, null,
                new long[] {8, 3, 3, 3}, 1, new long[] {1, 1}, new long[] {1, 1, 1, 1}, new long[] {1, 1}, false, 0,
                -INF, INF), conv1); // BN between Conv and Relu: no activation before folding
        assertFalse(conv1.depthwise());
        assertEquals(8, conv1.outputChannels());
        assertEquals("c1", conv1.finalOutput());

        QuantizableNode dw = q.get(1);
        assertTrue(dw.depthwise());
        assertEquals(8, dw.group());
        assertEquals("r1", dw.input());

        QuantizableNode pw = q.get(2);
        assertNull(pw.bias());

        QuantizableNode fc1 = q.get(3);
        assertEquals(new QuantizableNode("fc1", "Gemm", "f", "fc1.weight", "fc1.bias", "h", "Relu", "hr",
                new long[] {16, 8}, 1, new long[0], new long[0], new long[0], true, 0, 0, INF), fc1);
        assertEquals(16, fc1.outputChannels());

        QuantizableNode fc2 = q.get(4);
        assertEquals(new QuantizableNode("fc2", "MatMul", "hr", "fc2.weight", null, "logits", null, null,
                new long[] {16, 5}, 1, new long[0], new long[0], new long[0], false, 1, -INF, INF), fc2);
        assertEquals(5, fc2.outputChannels());
    }

    @Test
    void afterFoldingTheActivationsFollowTheConvs() {
        OnnxModel m = BatchNormFolder.fold(TestModels.smallCnn(1)).model();
        List<QuantizableNode> q = m.quantizableNodes();
        assertEquals("Relu", q.get(0).activation());
        assertEquals("r1", q.get(0).activationOutput());
        assertEquals(0.0, q.get(0).clipMin());
        assertEquals("Clip", q.get(1).activation());
        assertEquals(0.0, q.get(1).clipMin());
        assertEquals(6.0, q.get(1).clipMax());
        assertEquals("Relu", q.get(2).activation());
    }

    @Test
    void gemmWeightAxisFollowsTransB() {
        for (boolean transB : new boolean[] {false, true}) {
            TestModels.Builder b = new TestModels.Builder(2).gemm("fc", "x", "y", 6, 4, transB, false);
            QuantizableNode n = only(b.build(13, List.of(Graphs.floatValue("x", -1, 6)), List.of(Graphs.floatValue("y", -1, 4))));
            assertEquals(transB, n.transB());
            assertEquals(transB ? 0 : 1, n.weightAxis());
            assertEquals(4, n.outputChannels());
            assertNull(n.bias());
        }
    }

    @Test
    void gemmWithScaledProductOrTransposedInputIsAnErrorNamingTheNode() {
        for (var attr : List.of(Map.<String, Object>of("alpha", 2.0), Map.<String, Object>of("beta", 0.5),
                Map.<String, Object>of("transA", 1L))) {
            TestModels.Builder b = new TestModels.Builder(3);
            b.randomInit("w", 1, 4, 4);
            b.randomInit("c", 1, 4);
            b.node(Graphs.node("Gemm", "odd_fc", List.of("x", "w", "c"), List.of("y"), attr));
            OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 4, 4)), List.of(Graphs.floatValue("y", 4, 4)));
            ModelException e = assertThrows(ModelException.class, m::quantizableNodes);
            assertTrue(e.getMessage().contains("test-model.onnx: node odd_fc (Gemm)"), e.getMessage());
            assertTrue(e.getMessage().contains(attr.keySet().iterator().next()), e.getMessage());
        }
        // beta only scales C: without C it does not matter
        TestModels.Builder b = new TestModels.Builder(3);
        b.randomInit("w", 1, 4, 4);
        b.node(Graphs.node("Gemm", "fc", List.of("x", "w"), List.of("y"), Map.of("beta", 0.5)));
        assertEquals("fc", only(b.build(13, List.of(Graphs.floatValue("x", 4, 4)), List.of(Graphs.floatValue("y", 4, 4)))).name());
    }

    @Test
    void matMulCountsOnlyWithAConstantRankTwoWeight() {
        TestModels.Builder b = new TestModels.Builder(4);
        b.matMul("proj", "x", "p", 4, 4);
        b.node(Graphs.node("MatMul", "scores", List.of("p", "x2"), List.of("s"))); // two activations
        b.randomInit("batched", 1, 2, 4, 4);
        b.node(Graphs.node("MatMul", "batched_mm", List.of("s", "batched"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 2, 4), Graphs.floatValue("x2", 4, 4)),
                List.of(Graphs.floatValue("y", 2, 2, 4)));
        QuantizableNode n = only(m);
        assertEquals("proj", n.name());
        assertEquals(1, n.weightAxis());
    }

    @Test
    void aLayerOnAConstantInputIsNotQuantizable() {
        TestModels.Builder b = new TestModels.Builder(4);
        b.randomInit("table", 1, 3, 4);
        b.matMul("lookup", "table", "t", 4, 2);
        b.node(Graphs.node("Add", "add", List.of("t", "x"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 3, 2)), List.of(Graphs.floatValue("y", 3, 2)));
        assertEquals(List.of(), m.quantizableNodes());
    }

    @Test
    void activationCountsOnlyAsTheSoleReader() {
        TestModels.Builder b = new TestModels.Builder(5);
        b.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, false).relu("relu", "c", "r");
        b.node(Graphs.node("Add", "add", List.of("c", "r"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 1, 2, 3, 3)), List.of(Graphs.floatValue("y", 1, 2, 3, 3)));
        assertNull(only(m).activation());

        // a Conv output that is also a graph output keeps its Relu out of the layer too
        TestModels.Builder b2 = new TestModels.Builder(5);
        b2.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, false).relu("relu", "c", "r");
        OnnxModel m2 = b2.build(13, List.of(Graphs.floatValue("x", 1, 2, 3, 3)),
                List.of(Graphs.floatValue("r", 1, 2, 3, 3), Graphs.floatValue("c", 1, 2, 3, 3)));
        assertNull(only(m2).activation());
    }

    @Test
    void clipBoundsComeFromInitializersConstantNodesOrOpset10Attributes() {
        // ReLU6 as PyTorch exports it: Clip with Constant-node bounds
        TestModels.Builder b = new TestModels.Builder(6);
        b.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, true);
        b.node(Graphs.node("Constant", "lo", List.of(), List.of("zero"), Map.of("value", Graphs.floatTensor("v", new float[] {0f}))));
        b.node(Graphs.node("Constant", "hi", List.of(), List.of("six"), Map.of("value", Graphs.floatTensor("v", new float[] {6f}))));
        b.node(Graphs.node("Clip", "relu6", List.of("c", "zero", "six"), List.of("y")));
        QuantizableNode n = only(b.build(13, List.of(Graphs.floatValue("x", 1, 2, 3, 3)), List.of(Graphs.floatValue("y", 1, 2, 3, 3))));
        assertEquals("Clip", n.activation());
        assertEquals(0.0, n.clipMin());
        assertEquals(6.0, n.clipMax());

        // only a max: min stays −∞
        TestModels.Builder b2 = new TestModels.Builder(6);
        b2.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, true);
        b2.init("six", new float[] {6f});
        b2.node(Graphs.node("Clip", "clip", List.of("c", "", "six"), List.of("y")));
        n = only(b2.build(13, List.of(Graphs.floatValue("x", 1, 2, 3, 3)), List.of(Graphs.floatValue("y", 1, 2, 3, 3))));
        assertEquals(-INF, n.clipMin());
        assertEquals(6.0, n.clipMax());

        // a bound computed at run time is not an activation quantcal can fold into the layer
        TestModels.Builder b3 = new TestModels.Builder(6);
        b3.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, true);
        b3.node(Graphs.node("Clip", "clip", List.of("c", "", "limit"), List.of("y")));
        n = only(b3.build(13, List.of(Graphs.floatValue("x", 1, 2, 3, 3), Graphs.floatValue("limit")),
                List.of(Graphs.floatValue("y", 1, 2, 3, 3))));
        assertNull(n.activation());

        TestModels.Builder b4 = new TestModels.Builder(6);
        b4.conv("conv", "x", "c", 2, 2, 1, 1, 1, 0, true);
        b4.node(Graphs.node("Clip", "clip", List.of("c"), List.of("y"), Map.of("min", -1.0, "max", 1.0)));
        n = only(b4.build(10, List.of(Graphs.floatValue("x", 1, 2, 3, 3)), List.of(Graphs.floatValue("y", 1, 2, 3, 3))));
        assertEquals(-1.0, n.clipMin());
        assertEquals(1.0, n.clipMax());
    }

    /** A strided Conv with the given auto_pad, input [1, 2, size, size] declared (or with symbolic H, W). */
    private static OnnxModel autoPadConv(String autoPad, int size, int stride, int k, boolean knownShape, boolean explicit,
                                         long[] pads) {
        TestModels.Builder b = new TestModels.Builder(8);
        b.randomInit("w", 0.5, 3, 2, k, k);
        Map<String, Object> attrs = new HashMap<>(Map.of("strides", new long[] {stride, stride}));
        if (explicit) attrs.put("pads", pads); else attrs.put("auto_pad", autoPad);
        b.node(Graphs.node("Conv", "conv", List.of("x", "w"), List.of("y"), attrs));
        long hw = knownShape ? size : -1;
        return b.build(13, List.of(Graphs.floatValue("x", 1, 2, hw, hw)), List.of(Graphs.floatValue("y", 1, 3, -1, -1)));
    }

    @Test
    void autoPadIsResolvedToTheExplicitPadsOnnxRuntimeUses() {
        Random r = new Random(9);
        for (String mode : List.of("SAME_UPPER", "SAME_LOWER", "VALID")) {
            for (int[] c : new int[][] {{7, 2, 3}, {8, 2, 3}, {6, 1, 4}, {9, 3, 2}}) {
                int size = c[0], stride = c[1], k = c[2];
                OnnxModel auto = autoPadConv(mode, size, stride, k, true, false, null);
                long[] pads = only(auto).pads();
                OnnxModel explicit = autoPadConv(mode, size, stride, k, true, true, pads);
                FloatTensor x = FloatTensor.of("x", TestModels.gaussian(r, 2 * size * size, 1), 1, 2, size, size);
                try (ModelRunner a = ModelRunner.open(auto, RunnerOptions.singleThreaded());
                     ModelRunner e = ModelRunner.open(explicit, RunnerOptions.singleThreaded())) {
                    FloatTensor ya = a.run(x).get("y");
                    FloatTensor ye = e.run(x).get("y");
                    String what = mode + " " + java.util.Arrays.toString(c) + " pads " + java.util.Arrays.toString(pads);
                    assertArrayEquals(ya.shape(), ye.shape(), what);
                    assertArrayEquals(ya.data(), ye.data(), 1e-6f, what);
                }
            }
        }
        assertArrayEquals(new long[] {0, 0, 1, 1}, only(autoPadConv("SAME_UPPER", 8, 2, 3, true, false, null)).pads());
        assertArrayEquals(new long[] {1, 1, 0, 0}, only(autoPadConv("SAME_LOWER", 8, 2, 3, true, false, null)).pads());
    }

    @Test
    void samePaddingWithoutKnownShapesIsAnErrorNamingTheNode() {
        ModelException e = assertThrows(ModelException.class,
                () -> autoPadConv("SAME_UPPER", 7, 2, 3, false, false, null).quantizableNodes());
        assertTrue(e.getMessage().contains("node conv (Conv)"), e.getMessage());
        assertTrue(e.getMessage().contains("auto_pad SAME_UPPER"), e.getMessage());
        // VALID needs no shape
        assertArrayEquals(new long[4], only(autoPadConv("VALID", 7, 2, 3, false, false, null)).pads());
    }

    @Test
    void convDefaultsAndNonConstantWeights() {
        TestModels.Builder b = new TestModels.Builder(10);
        b.randomInit("w", 0.5, 4, 1, 3, 3);
        b.node(Graphs.node("Conv", "", List.of("x", "w"), List.of("c"), Map.of("group", 2L)));
        b.node(Graphs.node("Conv", "dynamic", List.of("c", "wx"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 1, 2, 5, 5), Graphs.floatValue("wx", 4, 4, 1, 1)),
                List.of(Graphs.floatValue("y", 1, 4, 3, 3)));
        QuantizableNode n = only(m);
        assertEquals("Conv_0", n.name());
        assertArrayEquals(new long[] {1, 1}, n.strides());
        assertArrayEquals(new long[] {0, 0, 0, 0}, n.pads());
        assertArrayEquals(new long[] {1, 1}, n.dilations());
        assertEquals(2, n.group());
        assertTrue(n.depthwise()); // group = C_in = 2, multiplier 2
    }
}
