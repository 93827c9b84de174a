package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ValueInfoProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ModelRunnerTest {

    private static final long[] X_SHAPE = {3, 2, 6, 6};

    /** Conv → Relu → Flatten → Gemm, truncated after {@code upTo} ("c", "r", "f" or "logits"). */
    private static OnnxModel convReluGemm(String upTo) {
        TestModels.Builder b = new TestModels.Builder(7);
        b.conv("conv", "x", "c", 2, 4, 3, 1, 1, 1, true);
        ValueInfoProto out = Graphs.floatValue("c", -1, 4, 6, 6);
        if (!upTo.equals("c")) {
            b.relu("relu", "c", "r");
            out = Graphs.floatValue("r", -1, 4, 6, 6);
        }
        if (upTo.equals("f") || upTo.equals("logits")) {
            b.node(Graphs.node("Flatten", "flatten", List.of("r"), List.of("f"), Map.of("axis", 1L)));
            out = Graphs.floatValue("f", -1, 144);
        }
        if (upTo.equals("logits")) {
            b.gemm("fc", "f", "logits", 144, 5, false, true);
            out = Graphs.floatValue("logits", -1, 5);
        }
        return b.build(13, List.of(Graphs.floatValue("x", -1, 2, 6, 6)), List.of(out));
    }

    private static FloatTensor input(long seed) {
        return FloatTensor.of("x", TestModels.gaussian(new Random(seed), TestModels.count(X_SHAPE), 1.0), X_SHAPE);
    }

    /** The output of a truncated model, run by ONNX Runtime directly without graph optimization. */
    private static float[] reference(OnnxModel truncated, FloatTensor x) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setOptimizationLevel(OptLevel.NO_OPT);
            try (OrtSession s = env.createSession(truncated.toByteArray(), so);
                 OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), x.shape());
                 OrtSession.Result r = s.run(Map.of("x", t))) {
                FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
                float[] out = new float[fb.remaining()];
                fb.get(out);
                return out;
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = OptLevel.class, names = {"NO_OPT", "BASIC_OPT", "EXTENDED_OPT", "ALL_OPT"})
    void capturedTensorsEqualTruncatedModelsAtEveryOptimizationLevel(OptLevel level) throws Exception {
        OnnxModel full = convReluGemm("logits");
        FloatTensor x = input(1);
        try (ModelRunner runner = ModelRunner.open(full, List.of("c", "r", "f"), new RunnerOptions(1, 1, level))) {
            assertEquals(List.of("logits", "c", "r", "f"), runner.outputNames());
            Map<String, FloatTensor> out = runner.run(Map.of("x", x));
            assertEquals(List.of("logits", "c", "r", "f"), List.copyOf(out.keySet()));
            for (String t : List.of("c", "r", "f", "logits")) {
                float[] ref = reference(convReluGemm(t), x);
                // Conv+Relu fusion (EXTENDED/ALL) must not touch a captured pre-activation tensor
                assertTrue(TestModels.relativeError(out.get(t).data(), ref) < 1e-6, t + " at " + level);
            }
            assertArrayEquals(new long[] {3, 4, 6, 6}, out.get("c").shape());
            assertArrayEquals(new long[] {3, 144}, out.get("f").shape());
            assertArrayEquals(new long[] {3, 5}, out.get("logits").shape());
        }
    }

    @Test
    void aBatchGivesWhatItsSamplesGiveOneByOne() {
        FloatTensor x = input(2);
        try (ModelRunner runner = ModelRunner.open(convReluGemm("logits"), List.of("r"), RunnerOptions.singleThreaded())) {
            Map<String, FloatTensor> all = runner.run(x);
            for (int i = 0; i < 3; i++) {
                Map<String, FloatTensor> one = runner.run(x.batch(i, i + 1));
                assertTrue(TestModels.relativeError(one.get("logits").data(), all.get("logits").batch(i, i + 1).data()) < 1e-6);
                assertTrue(TestModels.relativeError(one.get("r").data(), all.get("r").batch(i, i + 1).data()) < 1e-6);
            }
        }
    }

    @Test
    void threadOptionsAreHonoredWithoutChangingResults() {
        FloatTensor x = input(3);
        OnnxModel m = convReluGemm("logits");
        float[] one, two, dflt;
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(1, 1))) {
            one = r.run(x).get("logits").data();
        }
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(2, 2))) {
            two = r.run(x).get("logits").data();
        }
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(0, 0))) {
            dflt = r.run(x).get("logits").data();
        }
        assertTrue(TestModels.relativeError(two, one) < 1e-6);
        assertTrue(TestModels.relativeError(dflt, one) < 1e-6);
        assertThrows(IllegalArgumentException.class, () -> new RunnerOptions(-1, 1));
    }

    /** What {@link ModelRunner#runPinned} handed over, copied out (the buffers are valid until the next run). */
    private static Map<String, float[]> pinnedRun(ModelRunner r, ModelRunner.PinnedBuffers p, FloatTensor x) {
        Map<String, float[]> got = new java.util.LinkedHashMap<>();
        long bytes = r.runPinned(Map.of("x", InputTensor.of(x)), p, (t, values) -> {
            assertEquals(0, values.position());
            float[] v = new float[values.remaining() / 4];
            values.asFloatBuffer().get(v);
            got.put(t, v);
        });
        long sum = 0;
        for (float[] v : got.values()) sum += 4L * v.length;
        assertEquals(sum, bytes);
        return got;
    }

    @Test
    void pinnedBuffersLentAgainGiveEveryBatchSizeWhatAPlainRunGives() {
        // batches of 1, 3, 2 and 3 samples again (a task: one to measure, the budget's size, the remainder), through
        // buffers lent to one task, given back and lent to the next, and across a graph input captured too
        FloatTensor x3 = input(5), x2 = input(6).batch(0, 2), x1 = input(7).batch(1, 2);
        try (ModelRunner r = ModelRunner.open(convReluGemm("logits"), List.of("c", "r", "x"), RunnerOptions.singleThreaded())) {
            for (int task = 0; task < 2; task++) {
                ModelRunner.PinnedBuffers p = r.pinned(List.of("r", "c", "x"));
                for (FloatTensor x : List.of(x1, x3, x2, x3)) {
                    Map<String, float[]> got = pinnedRun(r, p, x);
                    Map<String, FloatTensor> want = r.run(x);
                    assertEquals(List.of("r", "c", "x"), List.copyOf(got.keySet()));
                    for (String t : got.keySet()) assertArrayEquals(want.get(t).data(), got.get(t), t + ", batch of " + x.shape()[0]);
                }
                p.close();
                assertEquals(1, r.idlePinned());
            }
        }
    }

    @Test
    void pinnedBuffersAreNotSharedAndAreDroppedWithTheSession() {
        ModelRunner r = ModelRunner.open(convReluGemm("logits"), List.of("r"), RunnerOptions.singleThreaded());
        ModelRunner.PinnedBuffers a = r.pinned(List.of("r")), b = r.pinned(List.of("r"));
        assertTrue(a != b, "two tasks at once get buffers of their own");
        float[] ra = pinnedRun(r, a, input(8)).get("r");
        float[] rb = pinnedRun(r, b, input(9)).get("r");
        assertArrayEquals(r.run(input(8)).get("r").data(), ra);
        assertArrayEquals(r.run(input(9)).get("r").data(), rb);
        a.close();
        b.close();
        assertEquals(2, r.idlePinned());
        assertTrue(r.pinned(List.of("r")) == b, "the buffers given back last are lent first");
        r.close();
        assertEquals(0, r.idlePinned());
        ModelRunner other = ModelRunner.open(convReluGemm("logits"), List.of("r"), RunnerOptions.singleThreaded());
        try (other) {
            assertThrows(IllegalArgumentException.class, () -> other.runPinned(Map.of("x", InputTensor.of(input(1))), a, (t, v) -> { }));
        }
    }

    @Test
    void aGraphInputCanBeCaptured() {
        FloatTensor x = input(4);
        try (ModelRunner r = ModelRunner.open(convReluGemm("logits"), List.of("x"), RunnerOptions.singleThreaded())) {
            assertArrayEquals(x.data(), r.run(x).get("x").data());
        }
    }

    @Test
    void initializersListedAsInputsNeedNotBeFed() {
        // IR 3 models list every initializer as a graph input too: only x is a real input
        OnnxModel m = convReluGemm("logits");
        var g = m.graph().toBuilder();
        for (var t : m.graph().getInitializerList()) g.addInput(Graphs.floatValue(t.getName(), t.getDimsList().stream().mapToLong(Long::longValue).toArray()));
        OnnxModel ir3 = OnnxModel.parse("ir3.onnx", m.proto().toBuilder().setIrVersion(3).setGraph(g).build().toByteArray(), null);
        FloatTensor x = input(5);
        try (ModelRunner a = ModelRunner.open(ir3, RunnerOptions.singleThreaded());
             ModelRunner b = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            assertEquals(List.of("x"), a.inputNames());
            assertArrayEquals(b.run(x).get("logits").data(), a.run(x).get("logits").data());
        }
    }

    @Test
    void unknownCaptureTensorIsNamed() {
        ModelException e = assertThrows(ModelException.class,
                () -> ModelRunner.open(convReluGemm("logits"), List.of("r", "no_such_tensor"), RunnerOptions.singleThreaded()));
        assertTrue(e.getMessage().contains("no_such_tensor"), e.getMessage());
        assertTrue(e.getMessage().contains("test-model.onnx"), e.getMessage());
        // an initializer is not produced by the graph either
        e = assertThrows(ModelException.class,
                () -> ModelRunner.open(convReluGemm("logits"), List.of("conv.weight"), RunnerOptions.singleThreaded()));
        assertTrue(e.getMessage().contains("conv.weight"), e.getMessage());
    }

    @Test
    void missingOrUnknownInputsAreNamed() {
        try (ModelRunner r = ModelRunner.open(convReluGemm("logits"), RunnerOptions.singleThreaded())) {
            assertEquals(List.of("x"), r.inputNames());
            ModelException e = assertThrows(ModelException.class, () -> r.run(Map.of()));
            assertTrue(e.getMessage().contains("graph input x not given"), e.getMessage());
            e = assertThrows(ModelException.class, () -> r.run(Map.of("x", input(1), "y", input(1).withName("y"))));
            assertTrue(e.getMessage().contains("no graph input named y"), e.getMessage());
            e = assertThrows(ModelException.class, () -> r.run(FloatTensor.of("x", new float[8], 1, 2, 2, 2)));
            assertTrue(e.getMessage().contains("ONNX Runtime run failed"), e.getMessage());
        }
    }

    @Test
    void aClosedRunnerRefusesToRun() {
        ModelRunner r = ModelRunner.open(convReluGemm("logits"), RunnerOptions.singleThreaded());
        r.close();
        r.close();
        assertThrows(IllegalStateException.class, () -> r.run(input(1)));
    }
}
