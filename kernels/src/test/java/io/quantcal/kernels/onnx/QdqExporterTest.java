package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto.DataType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class QdqExporterTest {

    private static final QdqOptions ORT = QdqOptions.onnxRuntime();

    // ------------------------------------------------------------------ parameters as a calibrator would make them

    /** Asymmetric 8-bit (uint8) over the tensor's min/max. */
    static QuantParams activationParams(float[] x, int bits) {
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
        for (float v : x) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        return AffineQuantizer.fromRange(QuantGrid.of(bits, false), lo, hi);
    }

    /** Symmetric signed, per channel along {@code axis} (or per tensor when axis < 0), clip = max |w|. */
    static QuantParams weightParams(float[] w, long[] shape, int axis, int bits) {
        if (axis < 0) {
            double m = 0;
            for (float v : w) m = Math.max(m, Math.abs(v));
            return SymmetricQuantizer.fromClip(bits, true, m);
        }
        int c = (int) shape[axis];
        long inner = 1;
        for (int d = axis + 1; d < shape.length; d++) inner *= shape[d];
        double[] clips = new double[c];
        for (int i = 0; i < w.length; i++) {
            int ch = (int) ((i / inner) % c);
            clips[ch] = Math.max(clips[ch], Math.abs(w[i]));
        }
        return SymmetricQuantizer.fromClips(bits, true, axis, clips);
    }

    /** The bias rule: int32 codes with scale s_x·s_w[c] (float32 product), dequantized. */
    static float[] quantizedBias(float[] b, QuantParams x, QuantParams w) {
        float[] out = new float[b.length];
        for (int c = 0; c < b.length; c++) {
            float s = (float) x.scale(0) * (float) w.scale(w.perChannel() ? c : 0);
            out[c] = AffineQuantizer.dequantize(AffineQuantizer.quantize(b[c], s, 0, Integer.MIN_VALUE, Integer.MAX_VALUE), s, 0);
        }
        return out;
    }

    private static float[] run(OnnxModel m, FloatTensor x, String output) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(x).get(output).data();
        }
    }

    private static List<NodeProto> nodes(OnnxModel m, String op) {
        return m.nodes().stream().filter(n -> n.getOpType().equals(op)).toList();
    }

    // ------------------------------------------------------------------ single layers against plain-loop references

    static Stream<Arguments> convCases() {
        List<Arguments> cases = new ArrayList<>();
        for (int[] shape : new int[][] {{4, 6, 1}, {4, 6, 2}, {4, 8, 4}}) { // C_in, C_out, group: plain, grouped, depthwise ×2
            for (boolean perChannel : new boolean[] {false, true}) {
                cases.add(Arguments.of(shape[0], shape[1], shape[2], perChannel, ORT));
            }
        }
        cases.add(Arguments.of(4, 6, 1, true, new QdqOptions(false, false, false)));
        cases.add(Arguments.of(4, 8, 4, true, QdqOptions.tensorRt()));
        cases.add(Arguments.of(4, 6, 2, false, new QdqOptions(true, true, false)));
        return cases.stream();
    }

    @ParameterizedTest
    @MethodSource("convCases")
    void convMatchesFakeQuantConvInJavaLoops(int cin, int cout, int group, boolean perChannel, QdqOptions options) {
        TestModels.Builder b = new TestModels.Builder(31 + cin * 100 + cout * 10 + group);
        b.conv("conv", "x", "c", cin, cout, 3, group, 2, 1, true).relu("relu", "c", "y");
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, cin, 7, 7)), List.of(Graphs.floatValue("y", -1, cout, 4, 4)));
        long[] xs = {2, cin, 7, 7};
        float[] x = TestModels.gaussian(new Random(5), TestModels.count(xs), 1.0);
        long[] ws = m.shape("conv.weight");
        float[] w = m.initializerFloats("conv.weight");
        float[] bias = m.initializerFloats("conv.bias");
        QuantParams xp = activationParams(x, 8);
        QuantParams wp = weightParams(w, ws, perChannel ? 0 : -1, 8);

        OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("conv.weight", wp), options);
        float[] actual = run(q, FloatTensor.of("x", x, xs), "y");

        float[] bq = options.quantizeBias() ? quantizedBias(bias, xp, wp) : bias;
        float[] expected = TestModels.relu(TestModels.conv2d(FakeQuant.apply(x, xs, xp), xs, FakeQuant.apply(w, ws, wp), ws,
                bq, group, new long[] {2, 2}, new long[] {1, 1, 1, 1}, new long[] {1, 1}, null));
        double err = TestModels.relativeError(actual, expected);
        assertTrue(err < 1e-5, "relative error " + err);
        // and the FP model is measurably different: the check above sees quantization
        assertTrue(TestModels.relativeError(run(m, FloatTensor.of("x", x, xs), "y"), expected) > 1e-4);
        if (!options.weightsAsQdqPair()) {
            assertArrayEquals(FakeQuant.quantize(w, ws, wp), q.initializerInts("conv.weight_quantized"));
        }
    }

    @ParameterizedTest
    @MethodSource("gemmCases")
    void gemmAndMatMulMatchFakeQuantProducts(String op, boolean transB, boolean perChannel) {
        int k = 12, n = 5;
        TestModels.Builder b = new TestModels.Builder(41);
        if (op.equals("Gemm")) b.gemm("fc", "x", "y", k, n, transB, true); else b.matMul("fc", "x", "y", k, n);
        long[] xs = op.equals("Gemm") ? new long[] {3, k} : new long[] {2, 3, k}; // MatMul: A of rank 3
        long[] ys = xs.clone();
        ys[ys.length - 1] = n;
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", xs)), List.of(Graphs.floatValue("y", ys)));
        QuantizableNode node = m.quantizableNodes().get(0);
        float[] x = TestModels.gaussian(new Random(6), TestModels.count(xs), 2.0);
        float[] w = m.initializerFloats("fc.weight");
        long[] ws = m.shape("fc.weight");
        QuantParams xp = activationParams(x, 8);
        QuantParams wp = weightParams(w, ws, perChannel ? node.weightAxis() : -1, 8);

        OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), ORT);
        float[] actual = run(q, FloatTensor.of("x", x, xs), "y");
        float[] bias = op.equals("Gemm") ? quantizedBias(m.initializerFloats("fc.bias"), xp, wp) : null;
        int rows = TestModels.count(xs) / k;
        float[] expected = TestModels.gemm(FakeQuant.apply(x, xs, xp), rows, k, FakeQuant.apply(w, ws, wp), n, transB, bias);
        double err = TestModels.relativeError(actual, expected);
        assertTrue(err < 1e-5, op + " transB " + transB + " relative error " + err);
        // the other granularity is measurably different: the check above sees which one was written
        QuantParams other = weightParams(w, ws, perChannel ? -1 : node.weightAxis(), 8);
        float[] otherExpected = TestModels.gemm(FakeQuant.apply(x, xs, xp), rows, k, FakeQuant.apply(w, ws, other), n, transB, bias);
        assertTrue(TestModels.relativeError(actual, otherExpected) > 1e-3);
        if (perChannel) {
            NodeProto dq = q.node("fc.weight_DequantizeLinear");
            assertEquals(node.weightAxis(), Nodes.intAttr(dq, "axis", -1));
        }
    }

    static Stream<Arguments> gemmCases() {
        return Stream.of(Arguments.of("Gemm", false, true), Arguments.of("Gemm", true, true),
                Arguments.of("Gemm", true, false), Arguments.of("MatMul", false, true), Arguments.of("MatMul", false, false));
    }

    /**
     * Below 8 bits the QDQ model is the model the table describes: activations beyond the grid are clipped to its end
     * points as fake-quant does (QuantizeLinear alone would saturate at the int8/uint8 container). The calibrated range
     * is narrower than the data, so many inputs lie beyond the grid; at 8 bits no Clip is added.
     */
    @ParameterizedTest
    @MethodSource("narrowCases")
    void narrowGridsClipLikeFakeQuantAtEveryBitWidth(int bits, boolean signedActivations, long opset) {
        int k = 16, n = 6;
        TestModels.Builder b = new TestModels.Builder(77);
        b.gemm("fc", "x", "y", k, n, true, true);
        long[] xs = {8, k};
        OnnxModel m = b.build(opset, List.of(Graphs.floatValue("x", xs)), List.of(Graphs.floatValue("y", new long[] {8, n})));
        float[] x = TestModels.gaussian(new Random(bits), TestModels.count(xs), 2.0);
        QuantParams xp = signedActivations ? SymmetricQuantizer.fromClip(bits, true, 1.5)
                : AffineQuantizer.fromRange(QuantGrid.of(bits, false), -1.0, 2.5);
        float[] w = m.initializerFloats("fc.weight");
        long[] ws = m.shape("fc.weight");
        QuantParams wp = weightParams(w, ws, opset < 13 ? -1 : 0, bits); // per-tensor keeps an old opset

        OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), ORT);
        assertEquals(opset, q.opset());
        float[] actual = run(q, FloatTensor.of("x", x, xs), "y");
        float[] fq = FakeQuant.apply(x, xs, xp);
        float[] expected = TestModels.gemm(fq, 8, k, FakeQuant.apply(w, ws, wp), n, true,
                quantizedBias(m.initializerFloats("fc.bias"), xp, wp));
        double err = TestModels.relativeError(actual, expected);
        assertTrue(err < 1e-5, bits + " bits: relative error " + err + " against fake-quant");
        int beyond = 0;
        for (int i = 0; i < x.length; i++) {
            if (x[i] > xp.scale(0) * (xp.qmax() - xp.zeroPoint(0)) || x[i] < xp.scale(0) * (xp.qmin() - xp.zeroPoint(0))) beyond++;
        }
        assertTrue(beyond > 10, "the test has inputs beyond the grid: " + beyond);
        boolean narrow = bits < 8 || (signedActivations && xp.qmin() == -127);
        assertEquals(narrow ? 1 : 0, nodes(q, "Clip").size(), bits + " bits");
        if (narrow) assertEquals(opset < 11 ? 2 : 0, nodes(q, "Clip").get(0).getAttributeCount(), "Clip-6 bounds are attributes");
        if (narrow) {
            // without the clip the container's saturation would differ from the grid: the check above can fail
            float[] unclipped = x.clone();
            for (int i = 0; i < x.length; i++) {
                int code = (int) Math.rint(x[i] / (float) xp.scale(0)) + xp.zeroPoint(0);
                int lo = signedActivations ? -128 : 0, hi = signedActivations ? 127 : 255;
                unclipped[i] = (Math.max(lo, Math.min(hi, code)) - xp.zeroPoint(0)) * (float) xp.scale(0);
            }
            float[] wrong = TestModels.gemm(unclipped, 8, k, FakeQuant.apply(w, ws, wp), n, true,
                    quantizedBias(m.initializerFloats("fc.bias"), xp, wp));
            assertTrue(TestModels.relativeError(actual, wrong) > 1e-3, bits + " bits: the clip changes the result");
        }
    }

    static Stream<Arguments> narrowCases() {
        List<Arguments> cases = new ArrayList<>();
        for (int bits : new int[] {2, 3, 4, 7, 8}) cases.add(Arguments.of(bits, false, 13L));
        cases.add(Arguments.of(4, true, 13L));
        cases.add(Arguments.of(8, true, 13L)); // int8 narrow symmetric range -127..127
        cases.add(Arguments.of(3, false, 10L)); // Clip-6 form: bounds as attributes
        return cases.stream();
    }

    @Test
    void sixteenBitGridsUseInt16AndRaiseTheOpsetTo21() {
        TestModels.Builder b = new TestModels.Builder(51);
        b.conv("conv", "x", "y", 3, 4, 3, 1, 1, 1, true);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 3, 5, 5)), List.of(Graphs.floatValue("y", -1, 4, 5, 5)));
        long[] xs = {1, 3, 5, 5};
        float[] x = TestModels.gaussian(new Random(7), TestModels.count(xs), 1.0);
        float[] w = m.initializerFloats("conv.weight");
        long[] ws = m.shape("conv.weight");
        QuantParams xp = activationParams(x, 16);
        QuantParams wp = weightParams(w, ws, 0, 12);

        OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("conv.weight", wp), ORT);
        assertEquals(21, q.opset());
        assertEquals(DataType.INT16_VALUE, q.initializer("conv.weight_quantized").getDataType());
        assertEquals(DataType.INT16_VALUE, q.initializer("conv.weight_zero_point").getDataType());
        assertEquals(DataType.UINT16_VALUE, q.initializer("x_zero_point").getDataType());
        float[] expected = TestModels.conv2d(FakeQuant.apply(x, xs, xp), xs, FakeQuant.apply(w, ws, wp), ws,
                quantizedBias(m.initializerFloats("conv.bias"), xp, wp), 1, new long[] {1, 1}, new long[] {1, 1, 1, 1},
                new long[] {1, 1}, null);
        assertTrue(TestModels.relativeError(run(q, FloatTensor.of("x", x, xs), "y"), expected) < 1e-5);
    }

    @Test
    void precomputedIntegerWeightsReplaceRounding() {
        TestModels.Builder b = new TestModels.Builder(52);
        b.gemm("fc", "x", "y", 8, 4, true, true);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 8)), List.of(Graphs.floatValue("y", -1, 4)));
        float[] w = m.initializerFloats("fc.weight");
        long[] ws = m.shape("fc.weight");
        QuantParams wp = weightParams(w, ws, 0, 4);
        // what AdaRound does: round some weights the other way
        int[] codes = FakeQuant.quantize(w, ws, wp);
        for (int i = 0; i < codes.length; i += 3) codes[i] = Math.max(wp.qmin(), Math.min(wp.qmax(), codes[i] + (i % 2 == 0 ? 1 : -1)));
        float[] x = TestModels.gaussian(new Random(8), 16, 1.0);
        QuantParams xp = activationParams(x, 8);
        for (QdqOptions o : List.of(ORT, QdqOptions.tensorRt())) {
            OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), Map.of("fc.weight", codes), o);
            float[] bias = o.quantizeBias() ? quantizedBias(m.initializerFloats("fc.bias"), xp, wp) : m.initializerFloats("fc.bias");
            float[] expected = TestModels.gemm(FakeQuant.apply(x, new long[] {2, 8}, xp), 2, 8,
                    FakeQuant.dequantize(codes, ws, wp), 4, true, bias);
            assertTrue(TestModels.relativeError(run(q, FloatTensor.of("x", x, 2, 8), "y"), expected) < 1e-5, o.toString());
        }
        int[] bad = codes.clone();
        bad[5] = 100;
        ModelException e = assertThrows(ModelException.class, () -> QdqExporter.export(m, Map.of("x", xp),
                Map.of("fc.weight", wp), Map.of("fc.weight", bad), ORT));
        assertTrue(e.getMessage().contains("fc.weight") && e.getMessage().contains("index 5"), e.getMessage());
    }

    // ------------------------------------------------------------------ a whole network

    /** Folds BN, calibrates min/max on a random batch (inputs of quantizable nodes captured), 8-bit params. */
    private record Calibrated(OnnxModel model, Map<String, QuantParams> activations, Map<String, QuantParams> weights) {}

    private static Calibrated calibrate(long seed) {
        OnnxModel m = BatchNormFolder.fold(TestModels.smallCnn(seed)).model();
        List<String> inputs = m.quantizableNodes().stream().map(QuantizableNode::input).distinct().toList();
        FloatTensor x = FloatTensor.of("input", TestModels.gaussian(new Random(seed), 16 * 3 * 64, 1.0), 16, 3, 8, 8);
        Map<String, QuantParams> acts = new LinkedHashMap<>();
        try (ModelRunner r = ModelRunner.open(m, inputs, RunnerOptions.singleThreaded())) {
            Map<String, FloatTensor> captured = r.run(x);
            for (String t : inputs) acts.put(t, activationParams(captured.get(t).data(), 8));
        }
        Map<String, QuantParams> weights = new HashMap<>();
        for (QuantizableNode n : m.quantizableNodes()) {
            weights.put(n.weight(), weightParams(m.initializerFloats(n.weight()), n.weightShape(), n.weightAxis(), 8));
        }
        return new Calibrated(m, acts, weights);
    }

    @Test
    void wholeNetworkAtEightBitsStaysCloseToFloat() {
        Calibrated c = calibrate(61);
        OnnxModel q = QdqExporter.export(c.model(), c.activations(), c.weights(), ORT);
        FloatTensor x = FloatTensor.of("input", TestModels.gaussian(new Random(99), 8 * 3 * 64, 1.0), 8, 3, 8, 8);
        double cos = TestModels.cosine(run(q, x, "logits"), run(c.model(), x, "logits"));
        assertTrue(cos > 0.999, "cosine " + cos);
        for (QdqOptions o : List.of(QdqOptions.tensorRt(), new QdqOptions(true, false, true))) {
            OnnxModel q2 = QdqExporter.export(c.model(), c.activations(), c.weights(), o);
            double cos2 = TestModels.cosine(run(q2, x, "logits"), run(c.model(), x, "logits"));
            assertTrue(cos2 > 0.999, o + " cosine " + cos2);
        }
    }

    @Test
    void wholeNetworkFollowsTheOnnxRuntimeLayout() {
        Calibrated c = calibrate(62);
        OnnxModel m = c.model();
        OnnxModel q = QdqExporter.export(m, c.activations(), c.weights(), ORT);
        assertEquals(13, q.opset());
        for (QuantizableNode n : m.quantizableNodes()) {
            String w = n.weight();
            assertFalse(q.isInitializer(w), w + " float weight should be gone");
            assertEquals(DataType.INT8_VALUE, q.initializer(w + "_quantized").getDataType());
            assertArrayEquals(n.weightShape(), q.shape(w + "_quantized"));
            assertArrayEquals(new long[] {n.outputChannels()}, q.shape(w + "_scale"));
            assertEquals(DataType.INT8_VALUE, q.initializer(w + "_zero_point").getDataType());
            assertArrayEquals(new int[n.outputChannels()], q.initializerInts(w + "_zero_point"));
            NodeProto dq = q.node(w + "_DequantizeLinear");
            assertEquals(List.of(w + "_quantized", w + "_scale", w + "_zero_point"), dq.getInputList());
            assertEquals(n.weightAxis(), Nodes.intAttr(dq, "axis", -1));

            NodeProto layer = q.node(n.name());
            assertEquals(n.input() + "_DequantizeLinear_Output", layer.getInput(0));
            assertEquals(w + "_DequantizeLinear_Output", layer.getInput(1));
            if (n.bias() != null) {
                String b = n.bias();
                assertEquals(b + "_DequantizeLinear_Output", layer.getInput(2));
                assertEquals(DataType.INT32_VALUE, q.initializer(b + "_quantized").getDataType());
                assertArrayEquals(new int[n.outputChannels()], q.initializerInts(b + "_zero_point"));
                float[] scale = q.initializerFloats(b + "_scale");
                QuantParams xp = c.activations().get(n.input()), wp = c.weights().get(n.weight());
                for (int ch = 0; ch < scale.length; ch++) {
                    assertEquals((float) xp.scale(0) * (float) wp.scale(ch), scale[ch], 0f);
                }
                assertEquals(0, Nodes.intAttr(q.node(b + "_DequantizeLinear"), "axis", -1));
            }
        }
        // r1 feeds the depthwise Conv and the residual Add: one shared pair, read by both
        assertEquals(c.activations().size(), nodes(q, "QuantizeLinear").size());
        NodeProto quant = q.node("r1_QuantizeLinear");
        assertEquals(List.of("r1", "r1_scale", "r1_zero_point"), quant.getInputList());
        assertEquals(DataType.UINT8_VALUE, q.initializer("r1_zero_point").getDataType());
        assertEquals(List.of(), q.initializer("r1_scale").getDimsList());
        assertEquals(List.of("dw", "add"), q.consumers("r1_DequantizeLinear_Output").stream().map(NodeProto::getName).toList());
        // node order stays topological: every input is produced before it is read
        assertTopological(q);
    }

    @Test
    void tensorRtLayoutHasAPairPerReaderAndFloatWeights() {
        Calibrated c = calibrate(63);
        OnnxModel q = QdqExporter.export(c.model(), c.activations(), c.weights(), QdqOptions.tensorRt());
        assertEquals(List.of("dw"), q.consumers("r1_DequantizeLinear_Output_1").stream().map(NodeProto::getName).toList());
        assertEquals(List.of("add"), q.consumers("r1_DequantizeLinear_Output_2").stream().map(NodeProto::getName).toList());
        QuantizableNode conv1 = c.model().quantizableNodes().get(0);
        float[] w = q.initializerFloats(conv1.weight());
        QuantParams wp = c.weights().get(conv1.weight());
        // the float weight holds exactly the fake-quant values, so QuantizeLinear returns the codes
        assertArrayEquals(FakeQuant.apply(c.model().initializerFloats(conv1.weight()), conv1.weightShape(), wp), w);
        assertEquals(List.of(conv1.weight(), conv1.weight() + "_scale", conv1.weight() + "_zero_point"),
                q.node(conv1.weight() + "_QuantizeLinear").getInputList());
        assertFalse(q.isInitializer(conv1.bias() + "_quantized"));
        assertEquals(conv1.bias(), q.node(conv1.name()).getInput(2));
        assertTopological(q);
    }

    private static void assertTopological(OnnxModel m) {
        java.util.Set<String> known = new java.util.HashSet<>();
        m.graph().getInitializerList().forEach(t -> known.add(t.getName()));
        m.inputs().forEach(t -> known.add(t.name()));
        for (NodeProto n : m.nodes()) {
            for (String i : n.getInputList()) assertTrue(i.isEmpty() || known.contains(i), n.getName() + " reads " + i + " before it exists");
            known.addAll(n.getOutputList());
        }
    }

    // ------------------------------------------------------------------ invalid input

    @Test
    void missingOrMismatchedParametersNameTheTensorAndNode() {
        Calibrated c = calibrate(64);
        Map<String, QuantParams> acts = new HashMap<>(c.activations());
        acts.remove("r1");
        ModelException e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), acts, c.weights(), ORT));
        assertTrue(e.getMessage().contains("node dw (Conv)") && e.getMessage().contains("activation r1"), e.getMessage());

        Map<String, QuantParams> ws = new HashMap<>(c.weights());
        ws.remove("fc1.weight");
        e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), c.activations(), ws, ORT));
        assertTrue(e.getMessage().contains("node fc1 (Gemm)") && e.getMessage().contains("weight fc1.weight"), e.getMessage());

        Map<String, QuantParams> seven = new HashMap<>(c.weights());
        seven.put("conv1.weight", SymmetricQuantizer.fromClips(8, true, 0, new double[] {1, 1, 1, 1, 1, 1, 1}));
        e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), c.activations(), seven, ORT));
        assertTrue(e.getMessage().contains("node conv1 (Conv)") && e.getMessage().contains("conv1.weight")
                && e.getMessage().contains("7 per-channel parameters, expected 8"), e.getMessage());

        Map<String, QuantParams> wrongAxis = new HashMap<>(c.weights());
        wrongAxis.put("fc2.weight", SymmetricQuantizer.fromClips(8, true, 0, new double[16]));
        e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), c.activations(), wrongAxis, ORT));
        assertTrue(e.getMessage().contains("node fc2 (MatMul)") && e.getMessage().contains("expected axis 1"), e.getMessage());

        Map<String, QuantParams> unknown = new HashMap<>(c.activations());
        unknown.put("no_such_tensor", SymmetricQuantizer.fromClip(8, true, 1));
        e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), unknown, c.weights(), ORT));
        assertTrue(e.getMessage().contains("no_such_tensor"), e.getMessage());

        Map<String, QuantParams> stray = new HashMap<>(c.weights());
        stray.put("bn1.weight", SymmetricQuantizer.fromClip(8, true, 1));
        e = assertThrows(ModelException.class, () -> QdqExporter.export(c.model(), c.activations(), stray, ORT));
        assertTrue(e.getMessage().contains("bn1.weight"), e.getMessage());
    }

    // ------------------------------------------------------------------ opset rules

    /** Gemm with per-channel weights in an opset-11 model, optionally with an opset-11 Unsqueeze (axes attribute). */
    private static OnnxModel opset11Model(boolean withUnsqueeze) {
        TestModels.Builder b = new TestModels.Builder(71);
        b.gemm("fc", "x", withUnsqueeze ? "h" : "y", 4, 3, true, true);
        if (withUnsqueeze) b.node(Graphs.node("Unsqueeze", "unsq", List.of("h"), List.of("y"), Map.of("axes", new long[] {1})));
        return b.build(11, List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("y", withUnsqueeze ? new long[] {2, 1, 3} : new long[] {2, 3})));
    }

    /** The fake-quantized output of {@link #opset11Model}'s Gemm on x [2, 4]: the table's computation. */
    private static float[] fakeQuantGemm(OnnxModel m, float[] x, QuantParams xp, QuantParams wp) {
        return TestModels.gemm(FakeQuant.apply(x, new long[] {2, 4}, xp), 2, 4,
                FakeQuant.apply(m.initializerFloats("fc.weight"), m.shape("fc.weight"), wp), 3, true,
                quantizedBias(m.initializerFloats("fc.bias"), xp, wp));
    }

    @Test
    void perChannelWeightsRaiseAnOldOpsetTo13AndPerTensorKeepsIt() {
        OnnxModel m = opset11Model(false);
        float[] x = {1, -2, 0.5f, 3, -1, 2, 0, 0.25f};
        QuantParams xp = activationParams(x, 8);
        float[] w = m.initializerFloats("fc.weight");
        QuantParams perChannel = weightParams(w, m.shape("fc.weight"), 0, 8);
        QuantParams perTensor = weightParams(w, m.shape("fc.weight"), -1, 8);
        OnnxModel q13 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", perChannel), ORT);
        assertEquals(13, q13.opset());
        OnnxModel q11 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", perTensor), ORT);
        assertEquals(11, q11.opset());
        // int8 weights run exactly only where ONNX Runtime's u8·s8 kernels do not saturate; uint8 ones everywhere
        OnnxModel u13 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", perChannel), ORT.withUnsignedWeights(true));
        OnnxModel u11 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", perTensor), ORT.withUnsignedWeights(true));
        assertEquals(13, u13.opset());
        assertEquals(11, u11.opset());
        List<Map.Entry<OnnxModel, QuantParams>> exact = new java.util.ArrayList<>(List.of(Map.entry(u13, perChannel),
                Map.entry(u11, perTensor)));
        if (!CpuFeatures.u8s8Saturates()) exact.addAll(List.of(Map.entry(q13, perChannel), Map.entry(q11, perTensor)));
        for (var pair : exact) {
            float[] expected = fakeQuantGemm(m, x, xp, pair.getValue());
            assertTrue(TestModels.relativeError(run(pair.getKey(), FloatTensor.of("x", x, 2, 4), "y"), expected) < 1e-5);
        }
    }

    @Test
    void uint8WeightsAreTheInt8GridShiftedBy128AndRunExactlyOnEveryCpu() {
        OnnxModel m = opset11Model(false);
        float[] x = {1, -2, 0.5f, 3, -1, 2, 0, 0.25f};
        QuantParams xp = activationParams(x, 8);
        float[] w = m.initializerFloats("fc.weight");
        for (QuantParams wp : List.of(weightParams(w, m.shape("fc.weight"), 0, 8), weightParams(w, m.shape("fc.weight"), -1, 4))) {
            OnnxModel s8 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), ORT);
            OnnxModel u8 = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), ORT.withUnsignedWeights(true));
            onnx.Onnx.TensorProto qs = s8.initializer("fc.weight_quantized"), qu = u8.initializer("fc.weight_quantized");
            assertEquals(onnx.Onnx.TensorProto.DataType.INT8_VALUE, qs.getDataType());
            assertEquals(onnx.Onnx.TensorProto.DataType.UINT8_VALUE, qu.getDataType());
            byte[] bs = qs.getRawData().toByteArray(), bu = qu.getRawData().toByteArray();
            assertEquals(bs.length, bu.length);
            for (int i = 0; i < bs.length; i++) assertEquals(bs[i] + 128, bu[i] & 0xff, "code " + i);
            byte[] zu = u8.initializer("fc.weight_zero_point").getRawData().toByteArray();
            for (byte z : zu) assertEquals(128, z & 0xff); // symmetric: zero point 0 + 128
            float[] expected = fakeQuantGemm(m, x, xp, wp);
            assertTrue(TestModels.relativeError(run(u8, FloatTensor.of("x", x, 2, 4), "y"), expected) < 1e-5, wp.toString());
        }
    }

    @Test
    void raisingTheOpsetRewritesAttributesThatBecameInputsAndNamesANodeItCannotRewrite() {
        // Unsqueeze's axes (an input since 13) and Clip-6 bounds (inputs since 11) are rewritten; outputs unchanged
        TestModels.Builder b = new TestModels.Builder(71);
        b.gemm("fc", "x", "h", 4, 3, true, true);
        b.node(Graphs.node("Clip", "clip", List.of("h"), List.of("c"), Map.of("min", -0.5f, "max", 0.75f)));
        b.node(Graphs.node("Unsqueeze", "unsq", List.of("c"), List.of("y"), Map.of("axes", new long[] {1})));
        OnnxModel m = b.build(10, List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("y", 2, 1, 3)));
        float[] x = {1, -2, 0.5f, 3, -1, 2, 0, 0.25f};
        float[] w = m.initializerFloats("fc.weight");
        QuantParams xp = activationParams(x, 8);
        QuantParams wp = weightParams(w, m.shape("fc.weight"), 0, 8);
        OnnxModel q = QdqExporter.export(m, Map.of("x", xp), Map.of("fc.weight", wp), ORT);
        assertEquals(13, q.opset());
        assertEquals(0, q.node("clip").getAttributeCount());
        assertEquals(3, q.node("clip").getInputCount());
        assertEquals(2, q.node("unsq").getInputCount());
        float[] gemm = fakeQuantGemm(m, x, xp, wp);
        for (int i = 0; i < gemm.length; i++) gemm[i] = Math.max(-0.5f, Math.min(0.75f, gemm[i]));
        assertTrue(TestModels.relativeError(run(q, FloatTensor.of("x", x, 2, 4), "y"), gemm) < 1e-5);

        // Upsample was removed at opset 10's successors: named, not guessed
        TestModels.Builder u = new TestModels.Builder(72);
        u.gemm("fc", "x", "h", 4, 3, true, true);
        u.node(Graphs.node("Upsample", "up", List.of("h", "sc"), List.of("y"), Map.of("mode", "nearest")));
        u.init("sc", new float[] {1, 2}, 2);
        OnnxModel mu = u.build(10, List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("y", 2, 6)));
        ModelException e = assertThrows(ModelException.class, () -> QdqExporter.export(mu,
                Map.of("x", SymmetricQuantizer.fromClip(8, true, 3)),
                Map.of("fc.weight", weightParams(mu.initializerFloats("fc.weight"), mu.shape("fc.weight"), 0, 8)), ORT));
        assertTrue(e.getMessage().contains("node up (Upsample)") && e.getMessage().contains("opset 13"), e.getMessage());
    }
}
