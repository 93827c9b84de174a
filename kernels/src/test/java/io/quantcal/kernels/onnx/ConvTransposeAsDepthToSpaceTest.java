package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ConvTransposeAsDepthToSpace}: a ConvTranspose with kernel = stride as 1×1 Conv + DepthToSpace. */
class ConvTransposeAsDepthToSpaceTest {

    @TempDir
    Path tmp;

    /**
     * conv1 → up1 (ConvTranspose 2×2 stride 2, bias) → Relu → up2 (3×3 stride 3, no bias) → keep (2×2 stride 1: not
     * taken) → GAP → fc, at {@code opset}.
     */
    static OnnxModel model(long opset) {
        TestModels.Builder b = new TestModels.Builder(71);
        b.conv("conv1", "x", "c1", 3, 6, 3, 1, 1, 1, true);
        b.randomInit("up1.weight", 0.3, 6, 4, 2, 2);
        b.randomInit("up1.bias", 0.2, 4);
        b.node(Graphs.node("ConvTranspose", "up1", List.of("c1", "up1.weight", "up1.bias"), List.of("u1"),
                Map.of("kernel_shape", new long[] {2, 2}, "strides", new long[] {2, 2}, "pads", new long[] {0, 0, 0, 0})));
        b.relu("relu1", "u1", "r1");
        b.randomInit("up2.weight", 0.3, 4, 5, 3, 3);
        b.node(Graphs.node("ConvTranspose", "up2", List.of("r1", "up2.weight"), List.of("u2"),
                Map.of("strides", new long[] {3, 3})));
        b.randomInit("keep.weight", 0.3, 5, 5, 2, 2);
        b.node(Graphs.node("ConvTranspose", "keep", List.of("u2", "keep.weight"), List.of("k"),
                Map.of("kernel_shape", new long[] {2, 2})));
        b.classifier("k", 5, 3);
        return b.build(opset, List.of(Graphs.floatValue("x", -1, 3, 4, 4)), List.of(Graphs.floatValue("logits", -1, 3)));
    }

    @Test
    void kernelEqualToStrideBecomesAOneByOneConvAndDepthToSpaceWithTheSameOutputs() throws Exception {
        for (long opset : new long[] {9, 13}) {
            OnnxModel m = model(opset);
            ConvTransposeAsDepthToSpace.Result r = ConvTransposeAsDepthToSpace.rewrite(m);
            assertEquals(List.of(new ConvTransposeAsDepthToSpace.Rewrite("up1", 2, 4), new ConvTransposeAsDepthToSpace.Rewrite("up2", 3, 5)),
                    r.rewritten());
            OnnxModel d = r.model();
            NodeProto up1 = d.node("up1");
            assertEquals("Conv", up1.getOpType());
            assertArrayEquals(new long[] {16, 6, 1, 1}, d.shape(up1.getInput(1)));
            // hand-worked: Conv channel (a·2 + b)·4 + co is W[:, co, a, b], its bias bias[co]
            float[] w = m.initializerFloats("up1.weight"), w2 = d.initializerFloats(up1.getInput(1));
            float[] bias = m.initializerFloats("up1.bias"), b2 = d.initializerFloats(up1.getInput(2));
            for (int co = 0; co < 4; co++) {
                for (int a = 0; a < 2; a++) {
                    for (int bb = 0; bb < 2; bb++) {
                        int oc = (a * 2 + bb) * 4 + co;
                        assertEquals(bias[co], b2[oc], 0f);
                        for (int ci = 0; ci < 6; ci++) assertEquals(w[((ci * 4 + co) * 2 + a) * 2 + bb], w2[oc * 6 + ci], 0f);
                    }
                }
            }
            // the Relu moved before the DepthToSpace, which writes the Relu's output; up2 without bias stays so
            NodeProto relu = d.node("relu1");
            assertEquals(up1.getOutput(0), relu.getInput(0));
            NodeProto d2s = d.consumers(relu.getOutput(0)).get(0);
            assertEquals("DepthToSpace", d2s.getOpType());
            assertEquals("r1", d2s.getOutput(0));
            assertEquals(2, d.node("up2").getInputCount());
            assertEquals("ConvTranspose", d.node("keep").getOpType());
            assertTrue(!d.isInitializer("up1.weight") && !d.isInitializer("up2.weight"), "the old weights left");
            // the same function in ONNX Runtime
            FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(9), 2 * 3 * 16, 1.0), 2, 3, 4, 4);
            double err = TestModels.relativeError(StemPaddingTest.run(d, x, OptLevel.NO_OPT), StemPaddingTest.run(m, x, OptLevel.NO_OPT));
            assertTrue(err < 1e-6, "opset " + opset + ": relative error " + err);
            assertSame(d, ConvTransposeAsDepthToSpace.rewrite(d).model());
        }
    }

    @Test
    void theOrtProfileRunsTheUpsamplingOnIntegers() throws Exception {
        OnnxModel d = ConvTransposeAsDepthToSpace.rewrite(model(13)).model();
        QdqPlacement p = QdqPlacement.plan(d, QdqProfile.ORT);
        FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(10), 4 * 3 * 16, 1.0), 4, 3, 4, 4);
        OnnxModel qdq = QdqExporter.export(d, QdqPlacementTest.calibrate(d, p, x), StemPaddingTest.weights(d, true, 7),
                Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("up.onnx"));
        // conv1, up1, up2 as QLinearConv (up1's Relu folded into its output grid); only "keep" stays a float ConvTranspose
        assertEquals(3L, ops.getOrDefault("com.microsoft:QLinearConv", 0L), ops.toString());
        assertEquals(1L, ops.getOrDefault(":ConvTranspose", 0L), ops.toString());
        assertEquals(0L, ops.getOrDefault(":Relu", 0L), ops.toString());
        double q = TestModels.relativeError(StemPaddingTest.run(qdq, x, OptLevel.ALL_OPT),
                StemPaddingTest.run(model(13), x, OptLevel.NO_OPT));
        assertTrue(q < 0.05, "quantized against FP32: relative error " + q);
    }
}
