package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/**
 * An If on an input fixed to one value (Silero VAD's sample rate): with {@code quantcal.input-values} the condition is
 * a constant, the branch it takes is put in the If's place, and its convolution is quantizable; ONNX Runtime computes
 * what the original model computes for that value (bit for bit, both unoptimized), for either branch. A nested If whose condition is
 * computed at run time stays.
 */
class IfInliningTest {

    /**
     * x [N, 2, 8, 8], sr int64 []: cond = Equal(sr, Constant 16000); If(cond): then conv_a(x) → relu_a → a, then a
     * nested If on max(a) > −1e9 (run time) returning a or x; else conv_b(x) → y_b. Both branches read their weights
     * from the main graph, and both name a tensor "t" (sibling branches may).
     */
    static OnnxModel model() {
        Random r = new Random(3);
        GraphProto innerThen = GraphProto.newBuilder().setName("inner_then")
                .addNode(Graphs.node("Identity", "inner_id", List.of("a"), List.of("inner_y")))
                .addOutput(Graphs.valueOfAnyShape("inner_y", TensorProto.DataType.FLOAT)).build();
        GraphProto innerElse = GraphProto.newBuilder().setName("inner_else")
                .addNode(Graphs.node("Neg", "inner_neg", List.of("a"), List.of("inner_n")))
                .addOutput(Graphs.valueOfAnyShape("inner_n", TensorProto.DataType.FLOAT)).build();
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(Graphs.node("Conv", "conv_a", List.of("x", "wa", "ba"), List.of("t"),
                        Map.of("pads", new long[] {1, 1, 1, 1})))
                .addNode(Graphs.node("Relu", "relu_a", List.of("t"), List.of("a")))
                .addNode(Graphs.node("ReduceMax", "amax", List.of("a"), List.of("am"), Map.of("keepdims", 0L)))
                .addNode(Graphs.node("Greater", "agt", List.of("am", "lo"), List.of("acond")))
                .addNode(Graphs.node("If", "inner", List.of("acond"), List.of("y_a"),
                        Map.of("then_branch", innerThen, "else_branch", innerElse)))
                .addOutput(Graphs.valueOfAnyShape("y_a", TensorProto.DataType.FLOAT)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(Graphs.node("Conv", "conv_b", List.of("x", "wb"), List.of("t")))
                .addOutput(Graphs.valueOfAnyShape("t", TensorProto.DataType.FLOAT)).build();
        List<NodeProto> nodes = List.of(
                Graphs.node("Constant", "rate", List.of(), List.of("c16k"),
                        Map.of("value", Graphs.int64Tensor("c16k", new long[] {16000}))),
                Graphs.node("Equal", "is16k", List.of("sr", "c16k"), List.of("cond")),
                Graphs.node("If", "by_rate", List.of("cond"), List.of("y"),
                        Map.of("then_branch", then, "else_branch", otherwise)));
        return OnnxModel.parse("vad.onnx", Graphs.model(13, nodes,
                List.of(Graphs.floatTensor("wa", TestModels.gaussian(r, 3 * 2 * 9, 0.4), 3, 2, 3, 3),
                        Graphs.floatTensor("ba", TestModels.gaussian(r, 3, 0.1), 3),
                        Graphs.floatTensor("wb", TestModels.gaussian(r, 3 * 2, 0.4), 3, 2, 1, 1),
                        Graphs.floatTensor("lo", new float[] {-1e9f})),
                List.of(Graphs.floatValue("x", -1, 2, 8, 8), Graphs.value("sr", TensorProto.DataType.INT64)),
                List.of(Graphs.floatValue("y", -1, 3, 8, 8))).toByteArray(), null);
    }

    static float[] run(OnnxModel m, float[] x, Long sr) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            // without graph optimization both run the same Conv kernel (ONNX Runtime lays out a main-graph Conv in its
            // blocked NCHWc form, one in a subgraph not: results one float ulp apart)
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            try (OrtSession s = env.createSession(m.toByteArray(), o)) {
                Map<String, OnnxTensor> feed = new HashMap<>();
                feed.put("x", OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[] {2, 2, 8, 8}));
                if (sr != null) feed.put("sr", OnnxTensor.createTensor(env, new long[] {sr}[0]));
                try (OrtSession.Result res = s.run(feed)) {
                    float[][][][] y = (float[][][][]) res.get(0).getValue();
                    float[] flat = new float[2 * 3 * 64];
                    int k = 0;
                    for (float[][][] a : y) for (float[][] b : a) for (float[] c : b) for (float v : c) flat[k++] = v;
                    return flat;
                } finally {
                    for (OnnxTensor t : feed.values()) t.close();
                }
            }
        }
    }

    @Test
    void theBranchTheFixedInputTakesIsInlinedAndComputesTheSame() throws Exception {
        OnnxModel m = model();
        // the rate is an input: nothing is constant, both convolutions stay in the subgraphs
        IfInlining.Result none = IfInlining.inline(m);
        assertEquals(List.of(), none.inlined());
        assertEquals(0, none.model().quantizableNodes().size());

        float[] x = TestModels.gaussian(new Random(5), 2 * 2 * 64, 1.0);
        for (long sr : new long[] {16000, 8000}) {
            OnnxModel fixed = InputValues.fix(m, "sr", new double[] {sr});
            assertEquals(List.of("x"), fixed.inputs().stream().map(TensorInfo::name).toList());
            IfInlining.Result r = IfInlining.inline(fixed);
            boolean then = sr == 16000;
            assertEquals(List.of("by_rate: " + (then ? "then_branch" : "else_branch")), r.inlined());
            OnnxModel in = r.model();
            assertFalse(in.nodes().stream().anyMatch(n -> n.getName().equals("by_rate") || n.getName().equals("is16k")),
                    "the If and its condition are gone");
            assertEquals(List.of(then ? "conv_a" : "conv_b"),
                    in.quantizableNodes().stream().map(QuantizableNode::name).toList());
            // the nested If on a run-time condition stays, still reading the inlined tensor a
            assertEquals(then, in.nodes().stream().anyMatch(n -> n.getName().equals("inner")));
            assertEquals(then ? "If" : "Conv", in.producer("y").getOpType(), "the If's output is the branch's own tensor");
            assertArrayEquals(run(m, x, sr), run(in, x, null), "sr " + sr);
        }
        assertNotEquals(run(m, x, 16000L)[0], run(m, x, 8000L)[0], "the two branches compute different things");
    }

    @Test
    void aConstantConditionIsInlinedWithoutAnyFixedInput() throws Exception {
        OnnxModel m = model();
        // the same model whose condition is a Constant true: its then_branch inlined as is
        GraphProto.Builder g = m.graph().toBuilder();
        g.setNode(1, Graphs.node("Constant", "is16k", List.of(), List.of("cond"),
                Map.of("value", TensorProto.newBuilder().setName("cond").setDataType(TensorProto.DataType.BOOL_VALUE)
                        .addInt32Data(1).build())));
        OnnxModel constant = m.withGraph(g.build());
        IfInlining.Result r = IfInlining.inline(constant);
        assertEquals(List.of("by_rate: then_branch"), r.inlined());
        float[] x = TestModels.gaussian(new Random(6), 2 * 2 * 64, 1.0);
        assertArrayEquals(run(m, x, 16000L), run(r.model(), x, 0L));
    }

    @Test
    void aFixedValueTheInputCannotHoldIsAClearError() {
        OnnxModel m = model();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> InputValues.fix(m, "rate", new double[] {16000}));
        assertEquals("the model has no input rate; its inputs are [x, sr]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> InputValues.fix(m, "sr", new double[] {8000, 16000}));
        assertEquals("input sr has shape [] (1 value), 2 given", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> InputValues.fix(m, "sr", new double[] {16000.5}));
        assertEquals("input sr is INT64: 16000.5 is not one of its values", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> InputValues.fix(m, "x", new double[] {1}));
        assertTrue(e.getMessage().startsWith("input x has shape [-1, 2, 8, 8] with an open dimension"), e.getMessage());
    }
}
