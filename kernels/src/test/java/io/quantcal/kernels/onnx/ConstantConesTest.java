package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/**
 * Weights the graph computes from constants with arithmetic (torch's weight normalization exported without constant
 * folding, a split or scaled parameter): evaluated once by ONNX Runtime on the driver, so every layer is quantizable,
 * the folded model gives ONNX Runtime's outputs bit for bit, and the values are the formula's.
 */
class ConstantConesTest {

    /**
     * conv1: w = g · v / ‖v‖₂ per output channel (ReduceL2 over axes 1..3, Div, Mul: torch.nn.utils.weight_norm as
     * torch.onnx writes it with do_constant_folding=False), bias b1 + b2; fc1 and fc2: the two parts of one parameter
     * (Split), fc2's scaled by a constant (Mul); {@code random} adds a Conv whose weight is a RandomNormal draw.
     */
    static OnnxModel computedWeights(boolean random, boolean activationBias) {
        Random r = new Random(11);
        List<NodeProto> nodes = new ArrayList<>();
        List<TensorProto> init = new ArrayList<>();
        init.add(Graphs.floatTensor("v", TestModels.gaussian(r, 4 * 3 * 9, 0.5), 4, 3, 3, 3));
        init.add(Graphs.floatTensor("g", new float[] {0.5f, 1.5f, 2f, 0.25f}, 4, 1, 1, 1));
        init.add(Graphs.floatTensor("b1", TestModels.gaussian(r, 4, 0.1), 4));
        init.add(Graphs.floatTensor("b2", TestModels.gaussian(r, 4, 0.1), 4));
        nodes.add(Graphs.node("ReduceL2", "norm", List.of("v"), List.of("vnorm"), Map.of("axes", new long[] {1, 2, 3})));
        nodes.add(Graphs.node("Div", "div", List.of("v", "vnorm"), List.of("vunit")));
        nodes.add(Graphs.node("Mul", "mul", List.of("g", "vunit"), List.of("conv1.w")));
        if (activationBias) {
            // a bias the graph computes from the input: the Conv stays FP32 with that reason
            nodes.add(Graphs.node("ReduceMean", "xmean", List.of("x"), List.of("xm"), Map.of("axes", new long[] {0, 2, 3},
                    "keepdims", 0L)));
            nodes.add(Graphs.node("Slice", "xm3", List.of("xm", "s0", "s4"), List.of("xm4")));
            init.add(Graphs.int64Tensor("s0", new long[] {0}, 1));
            init.add(Graphs.int64Tensor("s4", new long[] {1}, 1));
            nodes.add(Graphs.node("Add", "addb", List.of("b1", "xm4"), List.of("conv1.b")));
        } else {
            nodes.add(Graphs.node("Add", "addb", List.of("b1", "b2"), List.of("conv1.b")));
        }
        nodes.add(Graphs.node("Conv", "conv1", List.of("x", "conv1.w", "conv1.b"), List.of("c1"), Map.of("pads", new long[] {1, 1, 1, 1})));
        String last = "c1";
        if (random) {
            nodes.add(Graphs.node("RandomNormal", "draw", List.of(), List.of("conv2.w"), Map.of("shape", new long[] {4, 4, 1, 1},
                    "seed", 1.0f)));
            nodes.add(Graphs.node("Conv", "conv2", List.of("c1", "conv2.w"), List.of("c2")));
            last = "c2";
        }
        nodes.add(Graphs.node("Flatten", "flat", List.of(last), List.of("f")));
        init.add(Graphs.floatTensor("fc.both", TestModels.gaussian(r, 69 * 5, 0.2), 69, 5));
        init.add(Graphs.int64Tensor("halves", new long[] {64, 5}, 2));
        nodes.add(Graphs.node("Split", "split", List.of("fc.both", "halves"), List.of("fc1.w", "fc2.w0"), Map.of("axis", 0L)));
        init.add(Graphs.floatTensor("scale", new float[] {0.75f}));
        nodes.add(Graphs.node("Mul", "scalew", List.of("fc2.w0", "scale"), List.of("fc2.w")));
        nodes.add(Graphs.node("MatMul", "fc1", List.of("f", "fc1.w"), List.of("y1")));
        nodes.add(Graphs.node("MatMul", "fc2", List.of("y1", "fc2.w"), List.of("y")));
        return OnnxModel.parse("cones.onnx", Graphs.model(13, nodes, init,
                List.of(Graphs.floatValue("x", 2, 3, 4, 4)), List.of(Graphs.floatValue("y", 2, 5))).toByteArray(), null);
    }

    @Test
    void weightsComputedFromConstantsBecomeInitializersWithOnnxRuntimesValues() {
        OnnxModel m = computedWeights(false, false);
        assertEquals(List.of(), m.quantizableNodes(), "before: no weight is an initializer");
        ConstantFolder.Result f = ConstantFolder.fold(m);
        assertEquals(List.of("conv1.w", "conv1.b", "fc1.w", "fc2.w"), f.evaluated());
        assertEquals(Map.of("ReduceL2", 1, "Div", 1, "Mul", 2, "Add", 1, "Split", 1), f.evaluatedByOp());
        OnnxModel folded = f.model();
        assertEquals(List.of("conv1", "fc1", "fc2"), folded.quantizableNodes().stream().map(QuantizableNode::name).toList());
        assertEquals(List.of("Conv", "Flatten", "MatMul", "MatMul"), folded.nodes().stream().map(NodeProto::getOpType).toList(),
                "the cones are gone");
        for (String gone : List.of("v", "g", "b1", "b2", "fc.both", "halves", "scale")) {
            assertFalse(folded.isInitializer(gone), gone + " was read by the cones only");
        }

        // the values: w = g · v / ‖v‖ per output channel, by hand in double
        float[] v = m.initializerFloats("v");
        float[] g = m.initializerFloats("g");
        float[] w = folded.initializerFloats("conv1.w");
        for (int o = 0; o < 4; o++) {
            double ss = 0;
            for (int k = 0; k < 27; k++) ss += (double) v[o * 27 + k] * v[o * 27 + k];
            for (int k = 0; k < 27; k++) {
                assertEquals(g[o] * v[o * 27 + k] / Math.sqrt(ss), w[o * 27 + k], 1e-6, "conv1.w[" + o + "," + k + "]");
            }
        }
        float[] both = m.initializerFloats("fc.both");
        float[] fc2 = folded.initializerFloats("fc2.w");
        assertArrayEquals(new long[] {5, 5}, folded.shape("fc2.w"));
        for (int i = 0; i < 5; i++) {
            for (int j = 0; j < 5; j++) assertEquals(both[(64 + i) * 5 + j] * 0.75f, fc2[i * 5 + j], 0f, "fc2.w[" + i + "," + j + "]");
        }

        // ONNX Runtime's outputs, original and folded, bit for bit
        FloatTensor x = new FloatTensor("x", new long[] {2, 3, 4, 4}, TestModels.gaussian(new Random(5), 96, 1.0));
        assertArrayEquals(ConstantFolderTest.run(m, x), ConstantFolderTest.run(folded, x));
    }

    @Test
    void aRandomDrawOrAnActivationIsNotFoldedAndCoverageSaysWhy() {
        OnnxModel m = computedWeights(true, true);
        ConstantFolder.Result f = ConstantFolder.fold(m);
        assertEquals(List.of("conv1.w", "fc1.w", "fc2.w"), f.evaluated(), "the bias reads x; conv2's weight is a draw");
        assertTrue(f.model().producer("conv2.w") != null && f.model().producer("conv1.b") != null);
        Map<String, String> why = new java.util.LinkedHashMap<>();
        for (Coverage.Entry e : Coverage.of(f.model())) if (!e.quantized()) why.put(e.node(), e.reason());
        assertEquals(Map.of(
                "conv1", "bias conv1.b is computed at run time (not a constant, even after folding)",
                "conv2", "weight conv2.w is computed at run time (not a constant, even after folding)"), why);
    }
}
