package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/** A bias that int32 codes at s_x·s_w cannot hold gets a scale of its own instead of being clipped. */
class BiasOverflowTest {

    /** x [N, 4] → fc1 (4→2, bias b1) → fc2 (2→2, bias b2); the biases set by hand. */
    static OnnxModel model(float[] b1, float[] b2) {
        TestModels.Builder b = new TestModels.Builder(3);
        b.gemm("fc1", "x", "h", 4, 2, true, true).gemm("fc2", "h", "y", 2, 2, true, true);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 4)), List.of(Graphs.floatValue("y", -1, 2)));
        var g = m.graph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            String name = g.getInitializer(i).getName();
            float[] v = name.equals(m.node("fc1").getInput(2)) ? b1 : name.equals(m.node("fc2").getInput(2)) ? b2 : null;
            if (v != null) g.setInitializer(i, Graphs.floatTensor(name, v, 2));
        }
        return m.withGraph(g.build());
    }

    @Test
    void aBiasBeyondTheInt32RangeOfItsScaleGetsAScaleOfItsOwnAndTheNodeRunsInFloatWithTheSameNumbers() {
        // input scale 0.01 (uint8 over [0, 2.55]), weight scale 0.001 (clip 0.127): bias scale 1e-5, so int32 codes
        // hold |b| ≤ (2^31 − 1) · 1e-5 = 21474.8: 30000 needs 1.397 times that range, 20000 fits
        QuantParams x = AffineQuantizer.fromRange(QuantGrid.of(8, false), 0, 2.55);
        QuantParams w = SymmetricQuantizer.fromClip(8, true, 0.127);
        OnnxModel m = model(new float[] {30000, -5}, new float[] {20000, 1});
        QuantizableNode fc1 = m.quantizableNodes().get(0), fc2 = m.quantizableNodes().get(1);
        float s = (float) x.scale(0) * (float) w.scale(0);
        assertEquals(30000 / (double) s / Integer.MAX_VALUE, QdqExporter.biasOverflow(m, fc1, x, w), 1e-12);
        assertEquals(1.397, QdqExporter.biasOverflow(m, fc1, x, w), 1e-3);
        assertEquals(20000 / (double) s / Integer.MAX_VALUE, QdqExporter.biasOverflow(m, fc2, x, w), 1e-12);
        assertEquals(0, QdqExporter.biasOverflow(m, fc2, null, w), "no input parameters: nothing to quantize");

        // fc2 reads h, quantized over [-30000, 30000]: its bias scale is 235 · 0.001, and 20000 fits easily
        QuantParams h = AffineQuantizer.fromRange(QuantGrid.of(8, false), -30000, 30000);
        float s2 = (float) h.scale(0) * (float) w.scale(0);
        OnnxModel q = QdqExporter.export(m, Map.of("x", x, "h", h), Map.of(fc1.weight(), w, fc2.weight(), w), Map.of(),
                QdqOptions.onnxRuntime());
        // fc1: no bias input; its bias at a scale of its own, max |b| / 2e9 (so its codes fit), added after it; its
        // weight an int8 DequantizeLinear as usual
        assertEquals(2, q.node("fc1").getInputCount());
        NodeProto add = q.consumers(q.node("fc1").getOutput(0)).get(0);
        assertEquals("Add", add.getOpType());
        assertEquals("h", add.getOutput(0));
        NodeProto bdq = q.producer(add.getInput(1));
        assertEquals("DequantizeLinear", bdq.getOpType());
        float[] own = q.initializerFloats(bdq.getInput(1));
        assertArrayEquals(new float[] {(float) (30000 / 2.0e9)}, own, "one scale: the weight is per tensor");
        assertArrayEquals(QdqExporter.biasScales(m, fc1, x, w), own);
        assertArrayEquals(new int[] {AffineQuantizer.quantize(30000, own[0], 0, Integer.MIN_VALUE, Integer.MAX_VALUE),
                AffineQuantizer.quantize(-5, own[0], 0, Integer.MIN_VALUE, Integer.MAX_VALUE)}, q.initializerInts(bdq.getInput(0)));
        NodeProto wdq = q.producer(q.node("fc1").getInput(1));
        assertEquals(TensorProto.DataType.INT8_VALUE, q.initializer(wdq.getInput(0)).getDataType());
        // fc2: as always, s_x · s_w
        assertArrayEquals(new float[] {s2}, QdqExporter.biasScales(m, fc2, h, w));
        NodeProto dq = q.producer(q.node("fc2").getInput(2));
        assertEquals("DequantizeLinear", dq.getOpType());
        assertEquals(TensorProto.DataType.INT32_VALUE, q.initializer(dq.getInput(0)).getDataType());
        assertArrayEquals(new int[] {AffineQuantizer.quantize(20000, s2, 0, Integer.MIN_VALUE, Integer.MAX_VALUE),
                AffineQuantizer.quantize(1, s2, 0, Integer.MIN_VALUE, Integer.MAX_VALUE)}, q.initializerInts(dq.getInput(0)));
        assertEquals(TensorProto.DataType.INT8_VALUE, q.initializer(q.producer(q.node("fc2").getInput(1)).getInput(0)).getDataType());

        // in ONNX Runtime, operator by operator: fc1's output is exactly the float bias plus the fake-quantized product
        FloatTensor in = FloatTensor.of("x", new float[] {0.5f, 1.0f, 0.25f, 2.0f}, 1, 4);
        float[] got, optimized;
        try (ModelRunner r = ModelRunner.open(q, List.of("h"), new RunnerOptions(1, 1,
                ai.onnxruntime.OrtSession.SessionOptions.OptLevel.NO_OPT))) {
            got = r.run(in).get("h").data();
        }
        // and with all of ONNX Runtime's graph optimizations the same
        try (ModelRunner r = ModelRunner.open(q, List.of("h"), new RunnerOptions(1, 1,
                ai.onnxruntime.OrtSession.SessionOptions.OptLevel.ALL_OPT))) {
            optimized = r.run(in).get("h").data();
        }
        assertArrayEquals(got, optimized, 1e-2f);
        float[] wq = m.initializerFloats(fc1.weight());
        for (int o = 0; o < 2; o++) {
            double acc = 0;
            for (int i = 0; i < 4; i++) {
                float sx = (float) x.scale(0), sw = (float) w.scale(0);
                double xv = AffineQuantizer.dequantize(AffineQuantizer.quantize(in.data()[i], sx, x.zeroPoint(0), 0, 255), sx,
                        x.zeroPoint(0));
                double wv = AffineQuantizer.dequantize(AffineQuantizer.quantize(wq[o * 4 + i], sw, 0, -127, 127), sw, 0);
                acc += xv * wv;
            }
            assertEquals((o == 0 ? 30000 : -5) + acc, got[o], 1e-2, "output " + o);
        }
    }

    @Test
    void aConvWhoseBiasOverflowsAddsItPerChannelAfterItselfAndOnnxRuntimeAgreesAtEveryOptimizationLevel() {
        // x [N, 2, 4, 4] → conv (2→3, 3×3, pad 1), per-channel weights, a bias of 5e5 against s_x·s_w ≈ 5e-5 (int32 codes hold about 1e5)
        TestModels.Builder b = new TestModels.Builder(9);
        b.conv("conv", "x", "y", 2, 3, 3, 1, 1, 1, true);
        OnnxModel m0 = b.build(13, List.of(Graphs.floatValue("x", -1, 2, 4, 4)), List.of(Graphs.floatValue("y", -1, 3, 4, 4)));
        var g = m0.graph().toBuilder();
        String bias = m0.node("conv").getInput(2);
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals(bias)) g.setInitializer(i, Graphs.floatTensor(bias, new float[] {5e5f, -3f, 0.25f}, 3));
        }
        OnnxModel m = m0.withGraph(g.build());
        QuantizableNode conv = m.quantizableNodes().get(0);
        QuantParams x = AffineQuantizer.fromRange(QuantGrid.of(8, false), -1, 1.55);
        QuantParams w = QdqExporterTest.weightParams(m.initializerFloats(conv.weight()), m.shape(conv.weight()), 0, 8);
        OnnxModel q = QdqExporter.export(m, Map.of("x", x), Map.of(conv.weight(), w), Map.of(), QdqOptions.onnxRuntime());
        NodeProto add = q.consumers(q.node("conv").getOutput(0)).get(0);
        assertEquals("Add", add.getOpType());
        NodeProto bdq = q.producer(add.getInput(1));
        assertArrayEquals(new long[] {3, 1, 1}, q.shape(bdq.getInput(0)), "broadcast over H, W");
        float[] scales = q.initializerFloats(bdq.getInput(1));
        float[] want = QdqExporter.biasScales(m, conv, x, w);
        assertArrayEquals(want, scales);
        assertEquals((float) (5e5 / 2.0e9), scales[0], "channel 0 at its own scale");
        assertEquals((float) x.scale(0) * (float) w.scale(1), scales[1], "the others at s_x·s_w[c]");
        float[] xs = new float[2 * 2 * 16];
        java.util.Random r = new java.util.Random(4);
        for (int i = 0; i < xs.length; i++) xs[i] = (float) (r.nextDouble() * 2.5 - 1);
        FloatTensor in = FloatTensor.of("x", xs, 2, 2, 4, 4);
        float[][] y = new float[3][];
        var levels = new ai.onnxruntime.OrtSession.SessionOptions.OptLevel[] {ai.onnxruntime.OrtSession.SessionOptions.OptLevel.NO_OPT,
                ai.onnxruntime.OrtSession.SessionOptions.OptLevel.BASIC_OPT, ai.onnxruntime.OrtSession.SessionOptions.OptLevel.ALL_OPT};
        for (int k = 0; k < 3; k++) {
            try (ModelRunner run = ModelRunner.open(q, List.of(), new RunnerOptions(1, 1, levels[k]))) {
                y[k] = run.run(in).get("y").data();
            }
        }
        assertArrayEquals(y[0], y[1], 1e-2f);
        assertArrayEquals(y[0], y[2], 1e-2f);
        // channel 0 carries its 5e5: the bias arrived whole
        for (int n = 0; n < 2; n++) for (int i = 0; i < 16; i++) assertEquals(5e5, y[0][n * 48 + i], 50);
    }

    @Test
    void aChannelWithAllButZeroWeightsTakesTheScaleItsBiasNeedsAndTheConvStaysAnIntegerKernel() throws Exception {
        // conv 2→3, 3×3: channel 1's weights are all 1e-14 (a dead channel), its bias 0.5. Its own per-channel scale
        // (1e-14/127) times s_x = 0.01 puts 0.5 at ~6e15 codes, far beyond int32
        TestModels.Builder b = new TestModels.Builder(11);
        b.conv("conv", "x", "y", 2, 3, 3, 1, 1, 1, true);
        b.conv("conv2", "y", "z", 3, 3, 1, 1, 1, 0, true);
        OnnxModel m0 = b.build(13, List.of(Graphs.floatValue("x", -1, 2, 4, 4)), List.of(Graphs.floatValue("z", -1, 3, 4, 4)));
        var g = m0.graph().toBuilder();
        String bias = m0.node("conv").getInput(2), weight = m0.node("conv").getInput(1);
        float[] wv = m0.initializerFloats(weight);
        for (int i = 18; i < 36; i++) wv[i] = 1e-14f;
        for (int i = 0; i < g.getInitializerCount(); i++) {
            String n = g.getInitializer(i).getName();
            if (n.equals(bias)) g.setInitializer(i, Graphs.floatTensor(bias, new float[] {0.1f, 0.5f, -0.2f}, 3));
            if (n.equals(weight)) g.setInitializer(i, Graphs.floatTensor(weight, wv, 3, 2, 3, 3));
        }
        OnnxModel m = m0.withGraph(g.build());
        QuantizableNode conv = m.quantizableNodes().get(0);
        QuantParams x = AffineQuantizer.fromRange(QuantGrid.of(8, false), 0, 2.55);
        QuantParams w = QdqExporterTest.weightParams(wv, m.shape(weight), 0, 8);
        assertTrue(QdqExporter.biasOverflow(m, conv, x, w) > 1e6);
        QuantParams raised = QdqExporter.weightScalesForBias(m, conv, x, w);
        // channel 1 only: 0.5 / (0.01 · 2e9) = 2.5e-11, rounded up in float32; the others as they were
        assertEquals(w.scale(0), raised.scale(0));
        assertEquals(w.scale(2), raised.scale(2));
        assertEquals(Math.nextUp((float) (0.5 / ((double) (float) x.scale(0) * 2.0e9))), raised.scale(1), 0);
        assertTrue(QdqExporter.biasOverflow(m, conv, x, raised) <= 1);
        assertTrue(QdqExporter.biasOverflow(m, conv, x, raised) > 0.9, "raised no further than needed");
        assertSame(raised, QdqExporter.weightScalesForBias(m, conv, x, raised), "nothing left to raise");
        QuantParams perTensor = QdqExporterTest.weightParams(wv, m.shape(weight), -1, 8);
        assertSame(perTensor, QdqExporter.weightScalesForBias(m, conv, x, perTensor));
        // 16-bit: no integer kernel to keep, so no raise
        QuantParams wide = QdqExporterTest.weightParams(wv, m.shape(weight), 0, 16);
        assertTrue(QdqExporter.biasOverflow(m, conv, x, wide) > 1);
        assertSame(wide, QdqExporter.weightScalesForBias(m, conv, x, wide));

        // exported with the raised scales: an integer QLinearConv in ONNX Runtime (no float Conv, no bias Add), and
        // channel 1 reads its bias (its weights' codes are 0: 1e-14 against a 2.5e-11 step)
        QuantizableNode conv2 = m.quantizableNodes().get(1);
        Map<String, QuantParams> weights = Map.of(weight, raised, conv2.weight(),
                QdqExporterTest.weightParams(m.initializerFloats(conv2.weight()), m.shape(conv2.weight()), 0, 8));
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        OnnxModel q = QdqExporter.export(m, Map.of("x", x, "y", AffineQuantizer.fromRange(QuantGrid.of(8, false), -2, 2)),
                weights, Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals(3, q.node("conv").getInputCount());
        Map<String, Long> ops = TestModels.optimizedOps(q, java.nio.file.Files.createTempDirectory("bias").resolve("q.onnx"));
        // conv an integer kernel; conv2, whose output is the graph's, computes in float as always
        assertEquals(1L, ops.getOrDefault("com.microsoft:QLinearConv", 0L), ops.toString());
        assertEquals(0L, ops.getOrDefault(":Add", 0L), ops.toString());
        // without the raise, conv fell back to float with its bias added after it
        OnnxModel fallback = QdqExporter.export(m, Map.of("x", x, "y", AffineQuantizer.fromRange(QuantGrid.of(8, false), -2, 2)),
                Map.of(weight, w, conv2.weight(), weights.get(conv2.weight())), Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals(2, fallback.node("conv").getInputCount());
        float[] in = TestModels.uniform(new java.util.Random(4), 2 * 16, 0, 2.5);
        float[] y;
        try (ModelRunner r = ModelRunner.open(q, List.of("y"), new RunnerOptions(1, 1,
                ai.onnxruntime.OrtSession.SessionOptions.OptLevel.NO_OPT))) {
            y = r.run(FloatTensor.of("x", in, 1, 2, 4, 4)).get("y").data();
        }
        for (int i = 16; i < 32; i++) assertEquals(0.5f, y[i], 1e-9f, "channel 1 at " + (i - 16));
    }
}
