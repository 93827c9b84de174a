package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Random;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

class BatchNormFolderTest {

    /** ONNX Runtime folds BN itself from BASIC_OPT on: compare without optimization, so it cannot hide a bug. */
    private static final RunnerOptions NO_OPT = new RunnerOptions(1, 1, OptLevel.NO_OPT);

    private static float[] run(OnnxModel m, FloatTensor x, String output) {
        try (ModelRunner r = ModelRunner.open(m, NO_OPT)) {
            return r.run(x).get(output).data();
        }
    }

    private static void assertSameFunction(OnnxModel before, OnnxModel after, long[] xShape, String output) {
        Random r = new Random(11);
        for (int trial = 0; trial < 3; trial++) {
            FloatTensor x = FloatTensor.of(before.inputs().get(0).name(),
                    TestModels.gaussian(r, TestModels.count(xShape), 1.0), xShape);
            double err = TestModels.relativeError(run(after, x, output), run(before, x, output));
            assertTrue(err < 1e-4, "relative error " + err);
        }
    }

    private static long count(OnnxModel m, String op) {
        return m.nodes().stream().filter(n -> n.getOpType().equals(op)).count();
    }

    @Test
    void foldsEveryBatchNormAfterAConvAndKeepsTheFunction() {
        OnnxModel m = TestModels.smallCnn(21);
        BatchNormFolding f = BatchNormFolder.fold(m);
        OnnxModel folded = f.model();
        assertEquals(0, count(folded, "BatchNormalization"));
        assertEquals(3, count(folded, "Conv"));
        assertSameFunction(m, folded, new long[] {4, 3, 8, 8}, "logits");

        assertEquals(List.of("conv1", "dw", "pw"), f.folded().stream().map(FoldedBatchNorm::conv).toList());
        assertEquals(List.of("bn1", "bn2", "bn3"), f.folded().stream().map(FoldedBatchNorm::batchNorm).toList());
        FoldedBatchNorm bn1 = f.folded().get(0);
        assertArrayEquals(m.initializerFloats("bn1.weight"), bn1.gamma());
        assertArrayEquals(m.initializerFloats("bn1.bias"), bn1.beta());
        assertArrayEquals(m.initializerFloats("bn1.running_mean"), bn1.mean());
        assertArrayEquals(m.initializerFloats("bn1.running_var"), bn1.var());
        assertEquals(1e-5, bn1.epsilon(), 1e-12);

        // the Conv took over the BN's output; the BN's parameters are gone
        NodeProto conv1 = folded.node("conv1");
        assertEquals("b1", conv1.getOutput(0));
        assertEquals(List.of("input", "conv1.weight", "conv1.bias"), conv1.getInputList());
        for (String p : List.of("bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var")) {
            assertFalse(folded.isInitializer(p), p);
        }
        // W'_c = W_c · γ_c / √(var_c + ε), checked on one element
        float[] w = m.initializerFloats("conv1.weight");
        float[] w2 = folded.initializerFloats("conv1.weight");
        double k0 = bn1.gamma()[0] / Math.sqrt(bn1.var()[0] + 1e-5);
        assertEquals(w[0] * k0, w2[0], 1e-6);
    }

    @Test
    void convWithoutBiasGetsOne() {
        OnnxModel m = TestModels.smallCnn(22);
        OnnxModel folded = BatchNormFolder.fold(m).model();
        NodeProto pw = folded.node("pw");
        assertEquals(3, pw.getInputCount());
        String bias = pw.getInput(2);
        assertEquals("pw.weight_bias", bias);
        // b' = (0 − mean)·k + β
        float[] g = m.initializerFloats("bn3.weight"), beta = m.initializerFloats("bn3.bias");
        float[] mean = m.initializerFloats("bn3.running_mean"), var = m.initializerFloats("bn3.running_var");
        float[] b = folded.initializerFloats(bias);
        for (int c = 0; c < b.length; c++) {
            assertEquals(-mean[c] * g[c] / Math.sqrt(var[c] + 1e-5) + beta[c], b[c], 1e-6);
        }
        assertEquals("pw", folded.quantizableNodes().get(2).name());
        assertEquals(bias, folded.quantizableNodes().get(2).bias());
    }

    @Test
    void groupedAndDepthwiseConvsFoldPerOutputChannel() {
        // grouped (2 groups: C_in 4 → C_out 6) and depthwise with channel multiplier 2
        TestModels.Builder b = new TestModels.Builder(23);
        b.conv("grouped", "x", "c1", 4, 6, 3, 2, 1, 1, true).batchNorm("bn1", "c1", "b1", 6).relu("r", "b1", "r1");
        b.conv("dw", "r1", "c2", 6, 12, 3, 6, 2, 1, false).batchNorm("bn2", "c2", "y", 12);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 4, 7, 7)), List.of(Graphs.floatValue("y", -1, 12, 4, 4)));
        BatchNormFolding f = BatchNormFolder.fold(m);
        assertEquals(2, f.folded().size());
        assertEquals(0, count(f.model(), "BatchNormalization"));
        assertTrue(f.model().quantizableNodes().get(1).depthwise());
        assertSameFunction(m, f.model(), new long[] {2, 4, 7, 7}, "y");
    }

    @Test
    void batchNormsThatDoNotFollowASoleConvAreLeftAlone() {
        TestModels.Builder b = new TestModels.Builder(24);
        b.batchNorm("bn_in", "x", "n0", 2);                       // on the graph input
        b.conv("conv", "n0", "c", 2, 2, 1, 1, 1, 0, true);
        b.batchNorm("bn_shared", "c", "n1", 2);                   // the Conv output has another reader
        b.node(Graphs.node("Add", "add", List.of("c", "n1"), List.of("s")));
        b.conv("conv2", "s", "c2", 2, 2, 1, 1, 1, 0, true);
        b.batchNorm("bn_ok", "c2", "y", 2);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 2, 3, 3)), List.of(Graphs.floatValue("y", -1, 2, 3, 3)));
        BatchNormFolding f = BatchNormFolder.fold(m);
        assertEquals(List.of("bn_ok"), f.folded().stream().map(FoldedBatchNorm::batchNorm).toList());
        assertEquals(2, count(f.model(), "BatchNormalization"));
        assertTrue(f.model().isInitializer("bn_in.weight"));
        assertSameFunction(m, f.model(), new long[] {2, 2, 3, 3}, "y");

        OnnxModel none = TestModels.smallCnn(25);
        none = BatchNormFolder.fold(none).model();
        assertSame(none, BatchNormFolder.fold(none).model());
    }

    @Test
    void aSharedWeightIsCopiedNotChangedInPlace() {
        TestModels.Builder b = new TestModels.Builder(26);
        b.randomInit("w", 0.5, 2, 2, 1, 1);
        b.node(Graphs.node("Conv", "conv_a", List.of("x", "w"), List.of("ca")));
        b.node(Graphs.node("Conv", "conv_b", List.of("x", "w"), List.of("cb")));
        b.batchNorm("bn_a", "ca", "ya", 2);
        b.node(Graphs.node("Add", "add", List.of("ya", "cb"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 2, 3, 3)), List.of(Graphs.floatValue("y", -1, 2, 3, 3)));
        OnnxModel folded = BatchNormFolder.fold(m).model();
        assertEquals("w_folded", folded.node("conv_a").getInput(1));
        assertEquals("w", folded.node("conv_b").getInput(1));
        assertArrayEquals(m.initializerFloats("w"), folded.initializerFloats("w"));
        assertSameFunction(m, folded, new long[] {2, 2, 3, 3}, "y");
    }
}
