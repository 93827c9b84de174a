package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QdqPlacementTest {

    /** smallCnn with its BatchNorms folded: conv1→relu1, dw→clip2[0,6], pw→relu3, add(r3, r1), gap, flatten, fc1→relu4, fc2. */
    static OnnxModel model() {
        return BatchNormFolder.fold(TestModels.smallCnn(3)).model();
    }

    static String describe(QdqPlacement p) {
        StringBuilder sb = new StringBuilder();
        for (QdqPlacement.Site s : p.sites()) {
            sb.append(s.tensor()).append(s.ownsParameters() ? "" : "<" + s.owner()).append('@').append(s.producer())
                    .append(s.readers().stream().map(QdqPlacement.Reader::node).toList()).append(' ');
        }
        return sb.toString().trim();
    }

    @Test
    void ortPlacementQuantizesInputsOutputsAddAndPoolingAndSharesThroughFlatten() {
        QdqPlacement p = QdqPlacement.plan(model(), QdqProfile.ORT);
        // hand-derived from the graph: every compute op's input and output (after its Relu/Clip), the Flatten output
        // with the pooled tensor's parameters; the logits (a graph output nobody reads) stay float
        assertEquals("input@null[conv1] r1@conv1[dw, add] r2@dw[pw] r3@pw[add] s@add[gap] g@gap[flatten] f<g@flatten[fc1]"
                + " hr@fc1[fc2]", describe(p));
        assertEquals(List.of("r1", "r2", "r3", "hr"), new ArrayList<>(p.folded().keySet()));
        QdqPlacement.FoldedActivation clip = p.folded().get("r2");
        assertEquals("clip2", clip.node());
        assertEquals(0.0, clip.min());
        assertEquals(6.0, clip.max());
        assertEquals(List.of("input", "r1", "r2", "r3", "s", "g", "hr"), p.ownedTensors());
    }

    @Test
    void tensorRtPlacementQuantizesTheInputsOfQuantizableOpsAndResidualAdds() {
        QdqPlacement p = QdqPlacement.plan(model(), QdqProfile.TENSORRT);
        assertEquals("input@null[conv1] r1@relu1[dw, add] r2@clip2[pw] r3@relu3[add] f@flatten[fc1] hr@relu4[fc2]", describe(p));
        assertTrue(p.folded().isEmpty());
    }

    @Test
    void addsAndConcatsAfterTheLastLayerStayFloat() {
        // x → conv1 → a; x → conv2 → b; Concat(a, b) → cat → conv3 → c (a layer reads the Concat: quantized);
        // Add(a, b) → sum → Sigmoid → scores, and Concat(c, sum) → out: nothing after them is a layer, as in a
        // detector's box decoding and score selection, so they stay float on the layers' dequantized outputs
        TestModels.Builder b = new TestModels.Builder(4);
        b.conv("conv1", "x", "a", 2, 4, 1, 1, 1, 0, true);
        b.conv("conv2", "x", "b", 2, 4, 1, 1, 1, 0, true);
        b.node(Graphs.node("Concat", "cat", List.of("a", "b"), List.of("ab"), Map.of("axis", 1L)));
        b.conv("conv3", "ab", "c", 8, 4, 1, 1, 1, 0, true);
        b.node(Graphs.node("Add", "sum", List.of("a", "b"), List.of("s")));
        b.node(Graphs.node("Sigmoid", "sig", List.of("s"), List.of("scores")));
        b.node(Graphs.node("Concat", "tail", List.of("c", "s"), List.of("out"), Map.of("axis", 1L)));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 2, 3, 3)),
                List.of(Graphs.floatValue("scores", -1, 4, 3, 3), Graphs.floatValue("out", -1, 8, 3, 3)));
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        // a and b are read by cat (quantized) only, and conv3's output is quantized (QLinearConv's output); the Add
        // and the tail Concat read them through DequantizeLinear
        assertEquals("x@null[conv1, conv2] a@conv1[cat] b@conv2[cat] ab@cat[conv3] c@conv3[]", describe(p));
    }

    @Test
    void integerShapeArithmeticIsNeverQuantized() {
        // x → Conv → y; Shape(y) → Concat(shape, [-1]) (int64) → Reshape(y, ·): the Concat is integer arithmetic
        TestModels.Builder b = new TestModels.Builder(1);
        b.conv("conv", "x", "y", 4, 4, 1, 1, 1, 0, true);
        b.node(Graphs.node("Shape", "shape", List.of("y"), List.of("sh")));
        b.node(Graphs.node("Gather", "first", List.of("sh", "zero"), List.of("n")));
        b.node(Graphs.node("Unsqueeze", "unsq", List.of("n", "axes"), List.of("n1")));
        b.node(Graphs.node("Concat", "cat", List.of("n1", "minus1"), List.of("target"), Map.of("axis", 0L)));
        b.node(Graphs.node("Reshape", "reshape", List.of("y", "target"), List.of("flat")));
        b.node(Graphs.node("Mul", "square", List.of("flat", "flat"), List.of("z")));
        b.matMul("fc", "z", "out", 36, 2); // a layer after the Mul: an Add/Mul after the last layer stays float
        b.initializers.add(Graphs.int64Tensor("zero", new long[] {0}));
        b.initializers.add(Graphs.int64Tensor("axes", new long[] {0}, 1));
        b.initializers.add(Graphs.int64Tensor("minus1", new long[] {-1}, 1));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 4, 3, 3)), List.of(Graphs.floatValue("out", -1, 2)));
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        assertEquals("x@null[conv] y@conv[reshape] flat<y@reshape[square] z@square[fc]", describe(p));

        // Shape reads y's QuantizeLinear output (the same shape, no dequantized copy, and no second reader of the Conv's
        // output to stop ONNX Runtime fusing it); a pair per reader (TensorRT) leaves Shape on the float y, without a pair
        FloatTensor x = FloatTensor.of("x", TestModels.uniform(new Random(3), 2 * 36, -1, 1), 2, 4, 3, 3);
        Map<String, QuantParams> a = calibrate(m, p, x);
        OnnxModel shared = QdqExporter.export(m, a, weights(m), Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals("QuantizeLinear", shared.producer(shared.node("shape").getInput(0)).getOpType());
        assertEquals(List.of("y_QuantizeLinear"), shared.consumers("y").stream().map(NodeProto::getName).toList());
        Map<String, QuantParams> ay = Map.of("x", a.get("x"), "y", a.get("y"), "z", a.get("z"));
        OnnxModel perReader = QdqExporter.export(m, ay, weights(m), Map.of(), new QdqOptions(true, false, true));
        assertEquals("y", perReader.node("shape").getInput(0));
        assertEquals(3, count(perReader, "QuantizeLinear"), "x's, the Reshape's and fc's pairs; none for Shape");
        float[] fp;
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            fp = r.run(x).get("out").data();
        }
        for (OnnxModel q : List.of(shared, perReader)) {
            try (ModelRunner r = ModelRunner.open(q, RunnerOptions.singleThreaded())) {
                assertEquals(fp.length, r.run(x).get("out").data().length);
            }
        }
    }

    /** uint8 minmax parameters of every owned tensor, from the FP model's own values on {@code x}. */
    static Map<String, QuantParams> calibrate(OnnxModel m, QdqPlacement p, FloatTensor x) {
        Map<String, FloatTensor> v;
        try (ModelRunner r = ModelRunner.open(m, p.ownedTensors(), RunnerOptions.singleThreaded())) {
            v = r.run(x);
        }
        Map<String, QuantParams> owned = new LinkedHashMap<>();
        for (String t : p.ownedTensors()) owned.put(t, QdqExporterTest.activationParams(v.get(t).data(), 8));
        Map<String, QuantParams> out = new LinkedHashMap<>();
        for (QdqPlacement.Site s : p.sites()) out.put(s.tensor(), owned.get(s.owner()));
        return out;
    }

    static Map<String, QuantParams> weights(OnnxModel m) {
        Map<String, QuantParams> w = new LinkedHashMap<>();
        for (QuantizableNode n : m.quantizableNodes()) {
            w.put(n.weight(), QdqExporterTest.weightParams(m.initializerFloats(n.weight()), m.shape(n.weight()),
                    n.weightAxis(), 8));
        }
        return w;
    }

    static FloatTensor input(int n) {
        return FloatTensor.of("input", TestModels.uniform(new Random(11), n * 3 * 8 * 8, -1, 2), n, 3, 8, 8);
    }

    /** ONNX Runtime with no graph optimization: the operators' definitions, one by one. */
    static float[] reference(OnnxModel m, FloatTensor x) {
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(1, 1, OrtSession.SessionOptions.OptLevel.NO_OPT))) {
            return r.run(x).get("logits").data();
        }
    }

    static long count(OnnxModel m, String op) {
        return m.nodes().stream().filter(n -> n.getOpType().equals(op)).count();
    }

    @Test
    void removingReluAndClipWhereTheOutputGridClipsIsExact() {
        OnnxModel m = model();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = input(4);
        Map<String, QuantParams> a = calibrate(m, p, x);
        // Relu outputs are never negative: zero point 0 = qmin; the ReLU6 output's calibrated max is below 6
        for (String t : List.of("r1", "r3", "hr")) assertEquals(0, a.get(t).zeroPoint(0), t);
        assertTrue(a.get("r2").rangeMax(0) < 6);
        QdqOptions ort = QdqOptions.onnxRuntime();
        OnnxModel folded = QdqExporter.export(m, a, weights(m), Map.of(), ort, p);
        OnnxModel kept = QdqExporter.export(m, a, weights(m), Map.of(), ort,
                p.withoutFolding());
        assertEquals(0, count(folded, "Relu") + count(folded, "Clip"), "every Relu and the ReLU6 removed");
        // and the ReLU6's bounds with it: ONNX Runtime warns of every initializer nothing reads
        assertFalse(folded.isInitializer("clip2.min") || folded.isInitializer("clip2.max"));
        assertEquals(folded.graph(), QdqExporter.withoutUnusedInitializers(folded.graph()), "no unused initializer");
        assertTrue(kept.isInitializer("clip2.min") && kept.isInitializer("clip2.max"));
        assertEquals(3, count(kept, "Relu"));
        assertEquals(8, count(folded, "QuantizeLinear"), "input, r1, r2, r3, s, g, f (with g's parameters), hr");
        assertEquals(8 + 5 + 4, count(folded, "DequantizeLinear"), "8 activations, 5 weights, 4 biases (BN folding gave pw one)");
        assertArrayEquals(reference(kept, x), reference(folded, x), "bit-identical without the activations");

        // a grid that reaches beyond 6 cannot stand in for ReLU6: the Clip stays, the Relus still go
        Map<String, QuantParams> wide = new LinkedHashMap<>(a);
        wide.put("r2", AffineQuantizer.fromRange(QuantGrid.of(8, false), 0, 8));
        assertFalse(QdqPlacement.removable(p.folded().get("r2"), wide.get("r2")));
        OnnxModel partly = QdqExporter.export(m, wide, weights(m), Map.of(), ort, p);
        assertEquals(List.of("clip2"), partly.nodes().stream().filter(n -> n.getOpType().equals("Clip"))
                .map(NodeProto::getName).toList());
        assertArrayEquals(reference(QdqExporter.export(m, wide, weights(m), Map.of(), ort,
                p.withoutFolding()), x), reference(partly, x));
        // a zero point above the grid's bottom leaves negative values representable: the Relu stays
        QdqPlacement.FoldedActivation relu = p.folded().get("r3");
        assertFalse(QdqPlacement.removable(relu, AffineQuantizer.fromRange(QuantGrid.of(8, false), -0.5, 3)));
        assertTrue(QdqPlacement.removable(relu, AffineQuantizer.fromRange(QuantGrid.of(8, false), 0, 3)));
    }

    @Test
    void onnxRuntimeFusesTheOrtPlacementIntoIntegerKernels(@TempDir Path dir) throws Exception {
        OnnxModel m = model();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        FloatTensor x = input(4);
        OnnxModel qdq = QdqExporter.export(m, calibrate(m, p, x), weights(m), Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Integer> ops = optimizedOps(qdq, dir.resolve("opt.onnx"));
        // every Conv, the Add, the pooling and fc1 run on integers, no float Conv is left (fc1, on the pooled tensor
        // with its output quantized, as the 1×1 QLinearConv it computes: ClassifierAsConv); fc2 (no output
        // quantization, the logits) multiplies integers into float
        assertEquals(3 + 1, ops.getOrDefault("QLinearConv", 0), ops.toString());
        assertEquals(1, ops.getOrDefault("QLinearAdd", 0), ops.toString());
        assertEquals(1, ops.getOrDefault("QLinearGlobalAveragePool", 0), ops.toString());
        assertEquals(0, ops.getOrDefault("QGemm", 0), ops.toString());
        assertEquals(1, ops.getOrDefault("MatMulIntegerToFloat", 0), ops.toString());
        assertEquals(0, ops.getOrDefault("Conv", 0) + ops.getOrDefault("FusedConv", 0), ops.toString());
    }

    /**
     * ShuffleNet's unit as torch exports it: conv1 → Slice (x.chunk(2, 1) with run-time bounds, here constants) into
     * a branch conv and a Concat; a Split into two convs; a Gather of channels (the channel shuffle as a permutation).
     */
    static OnnxModel selections() {
        TestModels.Builder b = new TestModels.Builder(13);
        b.conv("conv1", "x", "c1", 4, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.node(Graphs.node("Slice", "half_a", List.of("r1", "zero", "four", "one"), List.of("a")));
        b.node(Graphs.node("Slice", "half_b", List.of("r1", "four", "eight", "one"), List.of("b0")));
        b.conv("branch", "b0", "bc", 4, 4, 3, 1, 1, 1, true).relu("relu_b", "bc", "br");
        b.node(Graphs.node("Concat", "cat", List.of("a", "br"), List.of("cat_out"), Map.of("axis", 1L)));
        b.node(Graphs.node("Gather", "shuffle", List.of("cat_out", "perm"), List.of("sh"), Map.of("axis", 1L)));
        b.node(Graphs.node("Split", "split", List.of("sh", "halves"), List.of("s0", "s1"), Map.of("axis", 1L)));
        b.conv("conv_s0", "s0", "d0", 4, 4, 1, 1, 1, 0, true);
        b.conv("conv_s1", "s1", "d1", 4, 4, 1, 1, 1, 0, true);
        b.node(Graphs.node("Add", "add", List.of("d0", "d1"), List.of("sum")));
        b.classifier("sum", 4, 5);
        var mp = b.model(13, List.of(Graphs.floatValue("x", -1, 4, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5))).toBuilder();
        mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("zero", new long[] {0}, 1))
                .addInitializer(Graphs.int64Tensor("four", new long[] {4}, 1))
                .addInitializer(Graphs.int64Tensor("eight", new long[] {8}, 1))
                .addInitializer(Graphs.int64Tensor("one", new long[] {1}, 1))
                .addInitializer(Graphs.int64Tensor("perm", new long[] {0, 4, 1, 5, 2, 6, 3, 7}, 8))
                .addInitializer(Graphs.int64Tensor("halves", new long[] {4, 4}, 2));
        return OnnxModel.parse("selections.onnx", mp.build().toByteArray(), null);
    }

    @Test
    void slicesGathersAndSplitsPassTheirInputsParametersOnAndRunOnIntegers(@TempDir Path dir) throws Exception {
        OnnxModel m = selections();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, String> owner = new java.util.HashMap<>();
        for (QdqPlacement.Site site : p.sites()) owner.put(site.tensor(), site.owner());
        // the slices take relu1's parameters, the shuffle and both Split outputs the Concat's
        assertEquals("r1", owner.get("a"));
        assertEquals("r1", owner.get("b0"));
        assertEquals("cat_out", owner.get("sh"));
        assertEquals("cat_out", owner.get("s0"));
        assertEquals("cat_out", owner.get("s1"));
        assertEquals("br", owner.get("br"));
        // so calibration measures none of them
        assertTrue(p.ownedTensors().containsAll(List.of("r1", "br", "cat_out")));
        assertFalse(p.ownedTensors().contains("b0") || p.ownedTensors().contains("s0") || p.ownedTensors().contains("sh"));

        FloatTensor x = FloatTensor.of("x", TestModels.uniform(new Random(4), 4 * 4 * 64, -1, 2), 4, 4, 8, 8);
        // 7-bit weights: ONNX Runtime's integer kernels are exact on every CPU (see StemPaddingTest)
        OnnxModel qdq = QdqExporter.export(m, calibrate(m, p, x), StemPaddingTest.weights(m, true, 7), Map.of(),
                QdqOptions.onnxRuntime(), p);
        Map<String, Integer> ops = optimizedOps(qdq, dir.resolve("sel.onnx"));
        // ONNX Runtime drops the Q/DQ around the Slices (which it merges into a Split) and the Gather, and runs the
        // Splits on the codes: one QuantizeLinear left (the model input), no DequantizeLinear
        assertEquals(1, ops.getOrDefault("QuantizeLinear", 0), ops.toString());
        assertEquals(0, ops.getOrDefault("DequantizeLinear", 0), ops.toString());
        assertEquals(4, ops.getOrDefault("QLinearConv", 0), ops.toString());
        assertEquals(1, ops.getOrDefault("QLinearConcat", 0), ops.toString());
        assertEquals(1, ops.getOrDefault("Gather", 0), ops.toString()); // on uint8 codes: no DQ before it
        // and the same numbers as the float reading of the same Q/DQ graph
        double err = TestModels.relativeError(StemPaddingTest.run(qdq, x, OrtSession.SessionOptions.OptLevel.ALL_OPT),
                StemPaddingTest.run(qdq, x, OrtSession.SessionOptions.OptLevel.NO_OPT));
        assertTrue(err < 0.01, "integer kernels against the float reading: relative error " + err);
    }

    /** The op types of ONNX Runtime's optimized graph (basic + extended: the QDQ fusions, no layout rewrites). */
    static Map<String, Integer> optimizedOps(OnnxModel m, Path file) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
            o.setOptimizedModelFilePath(file.toString());
            try (OrtSession s = env.createSession(m.toByteArray(), o)) {
                assertEquals(1, s.getInputNames().size());
            }
        }
        Map<String, Integer> ops = new TreeMap<>();
        for (NodeProto n : onnx.Onnx.ModelProto.parseFrom(Files.readAllBytes(file)).getGraph().getNodeList()) {
            ops.merge(n.getOpType(), 1, Integer::sum);
        }
        return ops;
    }

    /** Single-head attention: q = x·Wq, k = x·Wk, scores = q·kᵀ, p = softmax(scores), o = p·x. */
    static OnnxModel attention() {
        TestModels.Builder b = new TestModels.Builder(5);
        b.matMul("mq", "x", "q", 8, 8).matMul("mk", "x", "k", 8, 8);
        b.node(Graphs.node("Transpose", "kt", List.of("k"), List.of("kT"), Map.of("perm", new long[] {0, 2, 1})));
        b.node(Graphs.node("MatMul", "scores", List.of("q", "kT"), List.of("s")));
        b.node(Graphs.node("Softmax", "softmax", List.of("s"), List.of("p"), Map.of("axis", -1L)));
        b.node(Graphs.node("MatMul", "pv", List.of("p", "x"), List.of("o")));
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4, 8)), List.of(Graphs.floatValue("o", -1, 4, 8)));
    }

    @Test
    void attentionMatMulsOfTwoActivationsAreQuantizedOnBothInputs(@TempDir Path dir) throws Exception {
        OnnxModel m = attention();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        // both operands of Q·Kᵀ and of softmax·V; kᵀ keeps k's parameters; the scores are quantized as an output
        assertEquals("x@null[mq, mk, pv] q@mq[scores] k@mk[kt] kT<k@kt[scores] s@scores[] p@softmax[pv]", describe(p));
        assertEquals("x@null[mq, mk, pv] q@mq[scores] kT@kt[scores] p@softmax[pv]",
                describe(QdqPlacement.plan(m, QdqProfile.TENSORRT)));
        FloatTensor x = FloatTensor.of("x", TestModels.uniform(new Random(2), 2 * 4 * 8, -1, 1), 2, 4, 8);
        Map<String, QuantParams> a;
        try (ModelRunner r = ModelRunner.open(m, p.ownedTensors(), RunnerOptions.singleThreaded())) {
            Map<String, FloatTensor> v = r.run(x);
            Map<String, QuantParams> owned = new LinkedHashMap<>();
            for (String t : p.ownedTensors()) owned.put(t, QdqExporterTest.activationParams(v.get(t).data(), 8));
            a = new LinkedHashMap<>();
            for (QdqPlacement.Site s : p.sites()) a.put(s.tensor(), owned.get(s.owner()));
        }
        OnnxModel qdq = QdqExporter.export(m, a, weights(m), Map.of(), QdqOptions.onnxRuntime(), p);
        Map<String, Integer> ops = optimizedOps(qdq, dir.resolve("attn.onnx"));
        assertEquals(0, ops.getOrDefault("MatMul", 0), "no float MatMul left: " + ops);
        assertTrue(ops.getOrDefault("QLinearMatMul", 0) >= 1, ops.toString());
        // the exported model computes fake-quant of each operand: softmax·V equals a hand computation on the
        // dequantized operands
        try (ModelRunner r = ModelRunner.open(qdq, List.of("p"), new RunnerOptions(1, 1,
                OrtSession.SessionOptions.OptLevel.NO_OPT))) {
            Map<String, FloatTensor> out = r.run(x);
            float[] pv = out.get("p").data(), o = out.get("o").data(), xs = x.data();
            QuantParams qp = a.get("p"), qx = a.get("x");
            for (int n = 0; n < 2; n++) {
                for (int i = 0; i < 4; i++) {
                    for (int j = 0; j < 8; j++) {
                        double acc = 0;
                        for (int t = 0; t < 4; t++) {
                            acc += fakeQuant(pv[n * 16 + i * 4 + t], qp) * fakeQuant(xs[n * 32 + t * 8 + j], qx);
                        }
                        assertEquals(acc, o[n * 32 + i * 8 + j], 1e-5, "o[" + n + "," + i + "," + j + "]");
                    }
                }
            }
        }
    }

    static double fakeQuant(float v, QuantParams p) {
        float s = (float) p.scale(0);
        return AffineQuantizer.dequantize(AffineQuantizer.quantize(v, s, p.zeroPoint(0), p.qmin(), p.qmax()), s, p.zeroPoint(0));
    }

    @Test
    void tensorRtRulesNameTheTensorThatBreaksThem() {
        OnnxModel m = model();
        Map<String, QuantParams> w = weights(m);
        Map<String, QuantParams> a = new LinkedHashMap<>();
        a.put("input", SymmetricQuantizer.fromClip(8, true, 2.0));
        QdqExporter.checkProfile(m, QdqProfile.TENSORRT, a, w);
        a.put("r1", AffineQuantizer.fromRange(QuantGrid.of(8, false), 0, 3));
        ModelException e = assertThrows(ModelException.class, () -> QdqExporter.checkProfile(m, QdqProfile.TENSORRT, a, w));
        assertTrue(e.getMessage().contains("activation r1: unsigned grid [0, 255]; TensorRT rejects uint8"), e.getMessage());
        QdqExporter.checkProfile(m, QdqProfile.ORT, a, w);
    }
}
