package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@link QdqExporter}'s partial export and {@link LayerOrder}, checked by running the models in ONNX Runtime. */
class PartialQdqAndLayerOrderTest {

    private static final QdqOptions ORT = QdqOptions.onnxRuntime();

    /** Two parallel convs on the input (a and b), their sum through c, then a Gemm: waves [a, b], [c], [fc]. */
    private static OnnxModel branches() {
        TestModels.Builder b = new TestModels.Builder(5);
        b.conv("a", "input", "ya", 3, 4, 3, 1, 1, 1, true).relu("ra", "ya", "za");
        b.conv("b", "input", "yb", 3, 4, 1, 1, 1, 0, true);
        b.node(Graphs.node("Add", "add", List.of("za", "yb"), List.of("s")));
        b.conv("c", "s", "yc", 4, 4, 3, 4, 1, 1, true);
        b.classifier("yc", 4, 3);
        return b.build(13, List.of(Graphs.floatValue("input", -1, 3, 6, 6)), List.of(Graphs.floatValue("logits", -1, 3)));
    }

    private static List<String> names(List<QuantizableNode> ns) {
        return ns.stream().map(QuantizableNode::name).toList();
    }

    @Test
    void wavesFollowTheLongestChainOfQuantizableAncestors() {
        OnnxModel m = branches();
        List<List<QuantizableNode>> w = LayerOrder.waves(m, m.quantizableNodes());
        assertEquals(List.of(List.of("a", "b"), List.of("c"), List.of("fc")), w.stream().map(PartialQdqAndLayerOrderTest::names).toList());
        assertEquals(Set.of("a", "b", "c"), LayerOrder.ancestors(m, m.quantizableNodes()).get("fc"));
        // a selection: ancestors are counted among the selected nodes only
        List<QuantizableNode> some = m.quantizableNodes().stream().filter(n -> !n.name().equals("c")).toList();
        assertEquals(List.of(List.of("a", "b"), List.of("fc")), LayerOrder.waves(m, some).stream().map(PartialQdqAndLayerOrderTest::names).toList());
        // a chain: one layer per wave
        OnnxModel cnn = BatchNormFolder.fold(TestModels.smallCnn(3)).model();
        assertEquals(List.of(List.of("conv1"), List.of("dw"), List.of("pw"), List.of("fc1"), List.of("fc2")),
                LayerOrder.waves(cnn, cnn.quantizableNodes()).stream().map(PartialQdqAndLayerOrderTest::names).toList());
    }

    private record Calibrated(OnnxModel model, Map<String, QuantParams> acts, Map<String, QuantParams> weights) {}

    private static Calibrated calibrate(OnnxModel m, FloatTensor x) {
        List<String> inputs = m.quantizableNodes().stream().map(QuantizableNode::input).distinct().toList();
        Map<String, QuantParams> acts = new LinkedHashMap<>();
        try (ModelRunner r = ModelRunner.open(m, inputs, RunnerOptions.singleThreaded())) {
            Map<String, FloatTensor> captured = r.run(x);
            for (String t : inputs) acts.put(t, QdqExporterTest.activationParams(captured.get(t).data(), 8));
        }
        Map<String, QuantParams> weights = new HashMap<>();
        for (QuantizableNode n : m.quantizableNodes()) {
            weights.put(n.weight(), QdqExporterTest.weightParams(m.initializerFloats(n.weight()), n.weightShape(), n.weightAxis(), 4));
        }
        return new Calibrated(m, acts, weights);
    }

    private static Map<String, FloatTensor> run(OnnxModel m, FloatTensor x, List<String> tensors) {
        try (ModelRunner r = ModelRunner.open(m, tensors, RunnerOptions.singleThreaded())) {
            return r.run(x);
        }
    }

    @Test
    void onlyTheNamedLayersAreQuantized() {
        OnnxModel m = branches();
        FloatTensor x = FloatTensor.of("input", TestModels.gaussian(new Random(7), 4 * 3 * 36, 1.0), 4, 3, 6, 6);
        Calibrated c = calibrate(m, x);
        List<String> tensors = List.of("ya", "yb", "s", "yc", "logits");
        Map<String, FloatTensor> fp = run(m, x, tensors);
        Map<String, FloatTensor> full = run(QdqExporter.export(m, c.acts(), c.weights(), ORT), x, tensors);

        // nothing named: the FP32 function, bit for bit
        Map<String, FloatTensor> none = run(QdqExporter.export(m, c.acts(), c.weights(), Map.of(), ORT, Set.of()), x, tensors);
        for (String t : tensors) assertArrayEquals(fp.get(t).data(), none.get(t).data(), t);

        // every node named: the full export, node for node
        OnnxModel all = QdqExporter.export(m, c.acts(), c.weights(), Map.of(), ORT, Set.of("a", "b", "c", "fc"));
        assertEquals(QdqExporter.export(m, c.acts(), c.weights(), ORT).graph(), all.graph());

        // the first wave quantized: a and b as in the full QDQ model, c computes in FP32 from their outputs
        OnnxModel first = QdqExporter.export(m, c.acts(), c.weights(), Map.of(), ORT, Set.of("a", "b"));
        Map<String, FloatTensor> part = run(first, x, tensors);
        assertArrayEquals(full.get("ya").data(), part.get("ya").data());
        assertArrayEquals(full.get("yb").data(), part.get("yb").data());
        assertTrue(TestModels.relativeError(part.get("ya").data(), fp.get("ya").data()) > 1e-3, "a is quantized at 4 bits");
        // c in FP32 on the partial model's s: depthwise conv by the reference, FP weights
        QuantizableNode cn = m.quantizableNodes().stream().filter(n -> n.name().equals("c")).findFirst().orElseThrow();
        float[] expected = TestModels.conv2d(part.get("s").data(), part.get("s").shape(), m.initializerFloats(cn.weight()),
                cn.weightShape(), m.initializerFloats(cn.bias()), 4, cn.strides(), cn.pads(), cn.dilations(), new long[4]);
        assertTrue(TestModels.relativeError(part.get("yc").data(), expected) < 1e-5, "c is left in FP32");
        long dq = first.nodes().stream().filter(n -> n.getOpType().equals("DequantizeLinear")).count();
        // weights of a and b, their biases, and the one shared input pair
        assertEquals(5, dq);

        // precomputed integer weights are used for the named layers
        QuantizableNode an = m.quantizableNodes().get(0);
        int[] codes = FakeQuant.quantize(m.initializerFloats(an.weight()), an.weightShape(), c.weights().get(an.weight()));
        codes[0] = codes[0] > c.weights().get(an.weight()).qmin() ? codes[0] - 1 : codes[0] + 1;
        OnnxModel withCodes = QdqExporter.export(m, c.acts(), c.weights(), Map.of(an.weight(), codes), ORT, Set.of("a"));
        assertEquals(codes[0], withCodes.initializerInts(an.weight() + "_quantized")[0]);
    }

    @Test
    void anUnknownNodeIsNamed() {
        OnnxModel m = branches();
        FloatTensor x = FloatTensor.of("input", TestModels.gaussian(new Random(7), 3 * 36, 1.0), 1, 3, 6, 6);
        Calibrated c = calibrate(m, x);
        ModelException e = assertThrows(ModelException.class,
                () -> QdqExporter.export(m, c.acts(), c.weights(), Map.of(), ORT, Set.of("a", "add")));
        assertTrue(e.getMessage().contains("add") && e.getMessage().contains("not a quantizable node"), e.getMessage());
    }
}
