package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A BatchNormalization that no Conv absorbs, as a depthwise 1×1 Conv ({@link BatchNormFolder#fold(OnnxModel, boolean)}). */
class StandaloneBatchNormTest {

    @TempDir
    Path tmp;

    /** DenseNet's layer: x [N, 4, 8, 8] → conv_a; Concat(x, a) → bn → relu → conv_b (3×3) → GAP → flatten → fc. */
    static OnnxModel denseLayer() {
        TestModels.Builder b = new TestModels.Builder(31);
        b.conv("conv_a", "x", "a", 4, 4, 3, 1, 1, 1, true);
        b.node(Graphs.node("Concat", "concat", List.of("x", "a"), List.of("cat"), Map.of("axis", 1L)));
        b.batchNorm("bn", "cat", "n", 8).relu("relu", "n", "r");
        b.conv("conv_b", "r", "c", 8, 4, 3, 1, 1, 1, true);
        b.classifier("c", 4, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.uniform(new Random(5), 4 * 4 * 64, -1, 2), 4, 4, 8, 8);
    }

    @Test
    void aBatchNormAfterAConcatBecomesTheDepthwiseConvItComputes() {
        OnnxModel m = denseLayer();
        BatchNormFolding kept = BatchNormFolder.fold(m, false);
        assertEquals(Map.of("bn", "no Conv before it to fold into"), kept.kept());
        assertEquals(List.of(), kept.asConv());

        BatchNormFolding f = BatchNormFolder.fold(m, true);
        assertEquals(List.of(), f.folded());
        assertEquals(List.of("bn"), f.asConv().stream().map(FoldedBatchNorm::batchNorm).toList());
        assertEquals(Map.of(), f.kept());
        OnnxModel c = f.model();
        NodeProto bn = c.node("bn");
        assertEquals("Conv", bn.getOpType());
        assertEquals(List.of("cat"), bn.getInputList().subList(0, 1));
        assertEquals(List.of("n"), bn.getOutputList());
        assertEquals(8, Nodes.intAttr(bn, "group", 1));
        assertArrayEquals(new long[] {1, 1}, Nodes.intsAttr(bn, "kernel_shape"));
        assertArrayEquals(new long[] {8, 1, 1, 1}, c.shape(bn.getInput(1)));
        // hand-worked: k = γ / √(var + ε), bias β − mean · k
        float[] g = m.initializerFloats("bn.weight"), be = m.initializerFloats("bn.bias");
        float[] mu = m.initializerFloats("bn.running_mean"), v = m.initializerFloats("bn.running_var");
        float[] w = c.initializerFloats(bn.getInput(1)), bias = c.initializerFloats(bn.getInput(2));
        for (int ch = 0; ch < 8; ch++) {
            double k = g[ch] / Math.sqrt(v[ch] + 1e-5);
            assertEquals(k, w[ch], 1e-6 * Math.abs(k));
            assertEquals(be[ch] - mu[ch] * k, bias[ch], 1e-6);
        }
        assertTrue(!c.isInitializer("bn.running_mean"), "the BN's parameters go with it");
        // a quantizable node like any other, and the same function in ONNX Runtime (no optimization: it would fuse)
        assertTrue(c.quantizableNodes().stream().anyMatch(q -> q.name().equals("bn")));
        FloatTensor x = input();
        double err = TestModels.relativeError(StemPaddingTest.run(c, x, OrtSession.SessionOptions.OptLevel.NO_OPT),
                StemPaddingTest.run(m, x, OrtSession.SessionOptions.OptLevel.NO_OPT));
        assertTrue(err < 1e-5, "relative error " + err);
    }

    @Test
    void onPerChannelWeightsItsFactorsAreExactAndOnnxRuntimeRunsItOnIntegers() throws Exception {
        OnnxModel m = denseLayer();
        OnnxModel c = BatchNormFolder.fold(m, true).model();
        // each channel's one factor is the channel's largest magnitude: the top of its grid, exact
        QuantParams wp = StemPaddingTest.weights(c, true, 7).get(c.node("bn").getInput(1));
        float[] k = c.initializerFloats(c.node("bn").getInput(1));
        for (int ch = 0; ch < 8; ch++) {
            assertEquals(k[ch], (float) (wp.scale(ch) * Math.round(k[ch] / wp.scale(ch))), 1e-6 * Math.abs(k[ch]));
        }
        FloatTensor x = input();
        OnnxModel before = export(m, x), after = export(c, x);
        Map<String, Long> opsBefore = TestModels.optimizedOps(before, tmp.resolve("before.onnx")), opsAfter = TestModels.optimizedOps(after, tmp.resolve("after.onnx"));
        // before: the BN runs in float between a DequantizeLinear and a QuantizeLinear, with layout changes around it
        assertEquals(1L, opsBefore.getOrDefault(":BatchNormalization", 0L), opsBefore.toString());
        assertTrue(opsBefore.getOrDefault(":DequantizeLinear", 0L) >= 1, opsBefore.toString());
        // after: three channels-last QLinearConvs, nothing in float but the input's QuantizeLinear
        assertEquals(3L, opsAfter.getOrDefault("com.microsoft:QLinearConv", 0L), opsAfter.toString());
        assertEquals(0L, opsAfter.getOrDefault(":BatchNormalization", 0L), opsAfter.toString());
        assertEquals(0L, opsAfter.getOrDefault(":DequantizeLinear", 0L), opsAfter.toString());
        assertEquals(1L, opsAfter.getOrDefault(":QuantizeLinear", 0L), opsAfter.toString());
        // and the quantized models agree: the BN's output has the same scale in both; only the bias codes differ
        float[] yb = StemPaddingTest.run(before, x, OrtSession.SessionOptions.OptLevel.NO_OPT);
        float[] ya = StemPaddingTest.run(after, x, OrtSession.SessionOptions.OptLevel.NO_OPT);
        float[] fp = StemPaddingTest.run(m, x, OrtSession.SessionOptions.OptLevel.NO_OPT);
        double eb = TestModels.relativeError(yb, fp), ea = TestModels.relativeError(ya, fp);
        assertTrue(ea < 0.05 && ea < 1.5 * eb + 1e-3, "error against FP32: BN as Conv " + ea + ", float BN " + eb);
    }

    private static OnnxModel export(OnnxModel m, FloatTensor x) {
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, x);
        return QdqExporter.export(m, a, StemPaddingTest.weights(m, true, 7), Map.of(), QdqOptions.onnxRuntime(), p);
    }

    @Test
    void aBatchNormWhoseInputRankIsNotThatOfAConvIsKeptWithItsReason() {
        TestModels.Builder b = new TestModels.Builder(9);
        b.batchNorm("bn2d", "x", "y", 6);
        OnnxModel rank2 = b.build(13, List.of(Graphs.floatValue("x", -1, 6)), List.of(Graphs.floatValue("y", -1, 6)));
        BatchNormFolding f = BatchNormFolder.fold(rank2, true);
        assertEquals(Map.of("bn2d", "input rank 2 (a Conv takes 3 to 5)"), f.kept());
        assertEquals(rank2, f.model());

        // nothing declares x's rank and no Conv reads the BN's output
        TestModels.Builder u = new TestModels.Builder(9);
        u.batchNorm("bn", "x", "y", 6);
        OnnxModel unknown = u.build(13, List.of(Graphs.valueOfAnyShape("x", onnx.Onnx.TensorProto.DataType.FLOAT)),
                List.of(Graphs.valueOfAnyShape("y", onnx.Onnx.TensorProto.DataType.FLOAT)));
        assertEquals(Map.of("bn", "input rank unknown"), BatchNormFolder.fold(unknown, true).kept());

        // the same BN before a Conv: the Conv's weight gives the rank
        TestModels.Builder k = new TestModels.Builder(9);
        k.batchNorm("bn", "x", "y", 6).conv("conv", "y", "z", 6, 2, 1, 1, 1, 0, true);
        OnnxModel known = k.build(13, List.of(Graphs.valueOfAnyShape("x", onnx.Onnx.TensorProto.DataType.FLOAT)),
                List.of(Graphs.valueOfAnyShape("z", onnx.Onnx.TensorProto.DataType.FLOAT)));
        BatchNormFolding kf = BatchNormFolder.fold(known, true);
        assertEquals(List.of("bn"), kf.asConv().stream().map(FoldedBatchNorm::batchNorm).toList());
        assertEquals("Conv", kf.model().node("bn").getOpType());
    }
}
