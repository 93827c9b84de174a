package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.FunctionProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/**
 * Model-local functions expanded on reading: the expanded model computes what ONNX Runtime computes on the model with
 * its functions (the reference: ONNX Runtime's own function expansion), its layers are found and named per call.
 */
class FunctionInliningTest {

    private static final long[] X = {2, 2, 5, 5};

    private static OperatorSetIdProto opset(String domain, long v) {
        return OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(v).build();
    }

    /** An attribute of a function body that takes the call's attribute {@code ref}. */
    private static AttributeProto ref(String name, String ref, AttributeProto.AttributeType type) {
        return AttributeProto.newBuilder().setName(name).setRefAttrName(ref).setType(type).build();
    }

    /**
     * local.Block(x, w, b) -> (y, pre): Conv 3x3 (pads 1) → LeakyRelu(alpha = the call's alpha) → + x; pre is the Conv's
     * output, a second output most calls leave unnamed.
     */
    private static FunctionProto block() {
        NodeProto leaky = Graphs.node("LeakyRelu", "act", List.of("c"), List.of("r")).toBuilder()
                .addAttribute(ref("alpha", "alpha", AttributeProto.AttributeType.FLOAT)).build();
        return FunctionProto.newBuilder().setName("Block").setDomain("local")
                .addAllInput(List.of("x", "w", "b")).addAllOutput(List.of("y", "c")).addAttribute("alpha")
                .addNode(Graphs.node("Conv", "conv", List.of("x", "w", "b"), List.of("c"),
                        Map.of("pads", new long[] {1, 1, 1, 1}, "kernel_shape", new long[] {3, 3})))
                .addNode(leaky)
                .addNode(Graphs.node("Add", "", List.of("r", "x"), List.of("y")))
                .addOpsetImport(opset("", 13)).build();
    }

    private static NodeProto call(String fn, String name, List<String> in, List<String> out, Map<String, Object> attrs) {
        return Graphs.node(fn, name, in, out, attrs).toBuilder().setDomain("local").build();
    }

    private static TensorProto weight(String name, long seed, long... dims) {
        Random r = new Random(seed);
        int n = 1;
        for (long d : dims) n *= (int) d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian() * 0.3f;
        return Graphs.floatTensor(name, v, dims);
    }

    private static ModelProto withFunctions(List<NodeProto> nodes, List<TensorProto> inits, List<String> outputs,
                                            FunctionProto... fns) {
        ModelProto m = Graphs.model(13, nodes, inits, List.of(Graphs.floatValue("x", X)),
                outputs.stream().map(o -> Graphs.floatValue(o)).toList());
        ModelProto.Builder b = m.toBuilder().addOpsetImport(opset("local", 1));
        for (FunctionProto f : fns) b.addFunctions(f);
        return b.build();
    }

    private static float[] input() {
        Random r = new Random(3);
        float[] x = new float[2 * 2 * 5 * 5];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    /** The output as ONNX Runtime computes it on the model as written (its functions expanded by ONNX Runtime). */
    private static float[] reference(ModelProto m, String output) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(m.toByteArray(), new OrtSession.SessionOptions());
             OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(input()), X);
             OrtSession.Result r = s.run(Map.of("x", x))) {
            float[][][][] y = (float[][][][]) r.get(output).get().getValue();
            float[] flat = new float[2 * 2 * 5 * 5];
            int k = 0;
            for (float[][][] a : y) for (float[][] b : a) for (float[] c : b) for (float v : c) flat[k++] = v;
            return flat;
        }
    }

    private static float[] expanded(OnnxModel m, String output) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(FloatTensor.of("x", input(), X)).get(output).data();
        }
    }

    @Test
    void callsAreExpandedWithTheirInputsAttributesAndOutputsAndComputeWhatOnnxRuntimeComputes() throws Exception {
        // b1 sets alpha 0.2; b2 leaves it out (LeakyRelu's default 0.01) and has no bias (the optional input "")
        ModelProto m = withFunctions(List.of(
                        call("Block", "b1", List.of("x", "w1", "bias1"), List.of("h", "pre1"), Map.of("alpha", 0.2f)),
                        call("Block", "b2", List.of("h", "w2"), List.of("y", "pre2"), Map.of())),
                List.of(weight("w1", 1, 2, 2, 3, 3), weight("bias1", 2, 2), weight("w2", 3, 2, 2, 3, 3)),
                List.of("y", "pre2"), block());
        OnnxModel e = OnnxModel.parse("f.onnx", m.toByteArray(), null);

        assertEquals(0, e.proto().getFunctionsCount());
        assertEquals(Map.of("Block", 2), e.inlinedFunctions());
        assertEquals(List.of("b1/conv", "b1/act", "b1/Add_2", "b2/conv", "b2/act", "b2/Add_2"),
                e.nodes().stream().map(NodeProto::getName).toList());
        // the calls' names in: b1's Conv reads x, w1, bias1 and writes pre1, the call's second output
        assertEquals(List.of("x", "w1", "bias1"), e.node("b1/conv").getInputList());
        assertEquals(List.of("pre1"), e.node("b1/conv").getOutputList());
        assertEquals(List.of("b1/r"), e.node("b1/act").getOutputList());
        assertEquals(List.of("h"), e.node("b1/Add_2").getOutputList());
        assertEquals(List.of("h", "w2", ""), e.node("b2/conv").getInputList());
        assertEquals(List.of("pre2"), e.node("b2/conv").getOutputList());
        assertEquals(0.2f, (float) Nodes.floatAttr(e.node("b1/act"), "alpha", -1));
        assertTrue(!Nodes.has(e.node("b2/act"), "alpha"), "an attribute the call leaves out is left out");

        // both Convs are layers now, each with its own weight
        List<String> layers = QuantizableNodeFinder.find(e).stream().map(QuantizableNode::name).toList();
        assertEquals(List.of("b1/conv", "b2/conv"), layers);
        assertEquals(2, Coverage.of(e).stream().filter(Coverage.Entry::quantized).count());

        // the same numbers as ONNX Runtime gives for the model with its functions, bit for bit (same ops, same order)
        assertArrayEquals(reference(m, "y"), expanded(e, "y"));
        assertArrayEquals(reference(m, "pre2"), expanded(e, "pre2"));
    }

    /** local.Gate(x) = If(max(x) > 0, then, otherwise): its branches read x from the function. */
    private static FunctionProto.Builder gate(GraphProto then, GraphProto otherwise) {
        return FunctionProto.newBuilder().setName("Gate").setDomain("local").addInput("x").addOutput("y")
                .addNode(Graphs.node("ReduceMax", "max", List.of("x"), List.of("m"), Map.of("keepdims", 0L)))
                .addNode(Graphs.node("Constant", "zero", List.of(), List.of("zero"),
                        Map.of("value", Graphs.floatTensor("zero", new float[] {0f}))))
                .addNode(Graphs.node("Greater", "pos", List.of("m", "zero"), List.of("p")))
                .addNode(Graphs.node("If", "if", List.of("p"), List.of("y"), Map.of("then_branch", then, "else_branch", otherwise)))
                .addOpsetImport(opset("", 13));
    }

    @Test
    void aFunctionCallingFunctionsAndOneWithAnIfBranchReadingItsInputAreExpandedToo() throws Exception {
        // local.Pair(x, w, v) = Block(Block(x, w, -), v, -); local.Gate(x) = If(max(x) > 0, Relu(x), Neg(x))
        FunctionProto pair = FunctionProto.newBuilder().setName("Pair").setDomain("local")
                .addAllInput(List.of("x", "w", "v")).addOutput("y")
                .addNode(call("Block", "first", List.of("x", "w"), List.of("mid", "pre_a"), Map.of("alpha", 0.3f)))
                .addNode(call("Block", "second", List.of("mid", "v"), List.of("y", "pre_b"), Map.of()))
                .addOpsetImport(opset("", 13)).addOpsetImport(opset("local", 1)).build();
        GraphProto relu = GraphProto.newBuilder().setName("then").addNode(Graphs.node("Relu", "r", List.of("x"), List.of("t")))
                .addOutput(Graphs.valueOfAnyShape("t", TensorProto.DataType.FLOAT)).build();
        GraphProto neg = GraphProto.newBuilder().setName("else").addNode(Graphs.node("Neg", "n", List.of("x"), List.of("e")))
                .addOutput(Graphs.valueOfAnyShape("e", TensorProto.DataType.FLOAT)).build();
        FunctionProto gate = gate(relu, neg).build();
        // the main graph's own 'x' and 'mid' must not be confused with the functions' (renamed apart)
        ModelProto m = withFunctions(List.of(
                        call("Pair", "p", List.of("x", "w1", "w2"), List.of("mid"), Map.of()),
                        call("Gate", "g", List.of("mid"), List.of("y"), Map.of())),
                List.of(weight("w1", 4, 2, 2, 3, 3), weight("w2", 5, 2, 2, 3, 3)), List.of("y"), pair, block(), gate);
        OnnxModel e = OnnxModel.parse("f.onnx", m.toByteArray(), null);

        assertEquals(Map.of("Pair", 1, "Block", 2, "Gate", 1), e.inlinedFunctions());
        assertEquals(List.of("p/first/conv", "p/second/conv"), QuantizableNodeFinder.find(e).stream().map(QuantizableNode::name).toList());
        NodeProto ifNode = e.node("g/if");
        assertEquals("mid", ifNode.getAttribute(0).getG().getNode(0).getInput(0), "the branch reads the call's input");
        assertArrayEquals(reference(m, "y"), expanded(e, "y"));
    }

    /** {@code fields} set as protobuf unknown fields: field number → length-delimited values. */
    private static org.nd4j.shade.protobuf.UnknownFieldSet unknown(Map<Integer, List<org.nd4j.shade.protobuf.ByteString>> fields) {
        var b = org.nd4j.shade.protobuf.UnknownFieldSet.newBuilder();
        fields.forEach((k, v) -> {
            var f = org.nd4j.shade.protobuf.UnknownFieldSet.Field.newBuilder();
            v.forEach(f::addLengthDelimited);
            b.addField(k, f.build());
        });
        return b.build();
    }

    @Test
    void overloadsAndAttributeDefaultsOfIr10AreHonoured() throws Exception {
        // IR 10: two functions local.Act told apart by their overload ("leaky": LeakyRelu whose alpha defaults to 0.25 in
        // the function's attribute_proto, IR 9; "neg": Neg), called by overload; fields ND4J's IR-8 classes read as unknown
        var utf8 = (java.util.function.Function<String, org.nd4j.shade.protobuf.ByteString>)
                org.nd4j.shade.protobuf.ByteString::copyFromUtf8;
        NodeProto leakyBody = Graphs.node("LeakyRelu", "act", List.of("x"), List.of("y")).toBuilder()
                .addAttribute(ref("alpha", "alpha", AttributeProto.AttributeType.FLOAT)).build();
        FunctionProto leaky = FunctionProto.newBuilder().setName("Act").setDomain("local").addInput("x").addOutput("y")
                .addNode(leakyBody).addOpsetImport(opset("", 13))
                .setUnknownFields(unknown(Map.of(11, List.of(Graphs.attribute("alpha", 0.25f).toByteString()),
                        13, List.of(utf8.apply("leaky"))))).build();
        FunctionProto neg = FunctionProto.newBuilder().setName("Act").setDomain("local").addInput("x").addOutput("y")
                .addNode(Graphs.node("Neg", "act", List.of("x"), List.of("y"))).addOpsetImport(opset("", 13))
                .setUnknownFields(unknown(Map.of(13, List.of(utf8.apply("neg"))))).build();
        NodeProto first = call("Act", "a1", List.of("x"), List.of("h"), Map.of()).toBuilder()
                .setUnknownFields(unknown(Map.of(8, List.of(utf8.apply("neg"))))).build();
        NodeProto second = call("Act", "a2", List.of("h"), List.of("y"), Map.of()).toBuilder()
                .setUnknownFields(unknown(Map.of(8, List.of(utf8.apply("leaky"))))).build();
        ModelProto m = withFunctions(List.of(first, second), List.of(), List.of("y"), leaky, neg).toBuilder()
                .setIrVersion(10).build();
        OnnxModel e = OnnxModel.parse("ir10.onnx", m.toByteArray(), null);

        assertEquals(List.of("Neg", "LeakyRelu"), e.nodes().stream().map(NodeProto::getOpType).toList());
        assertEquals(0.25f, (float) Nodes.floatAttr(e.node("a2/act"), "alpha", -1), "the function's default alpha");
        float[] x = input(), y = expanded(e, "y");
        for (int i = 0; i < x.length; i++) {
            assertEquals(-x[i] >= 0 ? -x[i] : 0.25f * -x[i], y[i], 0f, "by hand at " + i);
        }
        assertArrayEquals(reference(m, "y"), y);
    }

    @Test
    void anAttributeReadInsideABranchOfTheFunctionTakesTheCallsValue() throws Exception {
        // local.Skip(x, w) -> (Conv(x, w)); local.Gate(x) with attribute alpha: If(max(x) > 0, LeakyRelu(x; alpha from
        // the function's attribute), Neg(x)), the reference inside the branch
        NodeProto leaky = Graphs.node("LeakyRelu", "lr", List.of("x"), List.of("t")).toBuilder()
                .addAttribute(ref("alpha", "alpha", AttributeProto.AttributeType.FLOAT)).build();
        GraphProto then = GraphProto.newBuilder().setName("then").addNode(leaky)
                .addOutput(Graphs.valueOfAnyShape("t", TensorProto.DataType.FLOAT)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else").addNode(Graphs.node("Neg", "n", List.of("x"), List.of("e")))
                .addOutput(Graphs.valueOfAnyShape("e", TensorProto.DataType.FLOAT)).build();
        FunctionProto skip = FunctionProto.newBuilder().setName("Skip").setDomain("local").addAllInput(List.of("x", "w"))
                .addOutput("c")
                .addNode(Graphs.node("Conv", "conv", List.of("x", "w"), List.of("c"),
                        Map.of("pads", new long[] {1, 1, 1, 1}, "kernel_shape", new long[] {3, 3})))
                .addOpsetImport(opset("", 13)).build();
        FunctionProto gate = gate(then, otherwise).addAttribute("alpha").build();
        ModelProto m = withFunctions(List.of(
                        call("Skip", "s", List.of("x", "w"), List.of("c"), Map.of()),
                        Graphs.node("Add", "sum", List.of("x", "c"), List.of("h")),
                        call("Gate", "g", List.of("h"), List.of("y"), Map.of("alpha", 0.3f))),
                List.of(weight("w", 6, 2, 2, 3, 3)), List.of("y"), skip, gate);
        OnnxModel e = OnnxModel.parse("f.onnx", m.toByteArray(), null);

        NodeProto inBranch = e.node("g/if").getAttribute(1).getG().getNode(0);
        assertEquals("LeakyRelu", inBranch.getOpType());
        assertEquals(0.3f, inBranch.getAttribute(0).getF(), "the call's alpha inside the branch");
        assertTrue(inBranch.getAttribute(0).getRefAttrName().isEmpty());
        assertArrayEquals(reference(m, "y"), expanded(e, "y"));
    }

    @Test
    void recursionAndAnotherOpsetAreRefusedNamingTheFunction() {
        FunctionProto loop = FunctionProto.newBuilder().setName("Forever").setDomain("local").addInput("x").addOutput("y")
                .addNode(call("Forever", "again", List.of("x"), List.of("y"), Map.of())).addOpsetImport(opset("", 13)).build();
        ModelProto rec = withFunctions(List.of(call("Forever", "f", List.of("x"), List.of("y"), Map.of())), List.of(),
                List.of("y"), loop);
        ModelException e = assertThrows(ModelException.class, () -> OnnxModel.parse("rec.onnx", rec.toByteArray(), null));
        assertTrue(e.getMessage().startsWith("rec.onnx: local function local.Forever calls itself"), e.getMessage());

        FunctionProto old = block().toBuilder().clearOpsetImport().addOpsetImport(opset("", 11)).build();
        ModelProto mixed = withFunctions(List.of(call("Block", "b", List.of("x", "w"), List.of("y", "c"), Map.of())),
                List.of(weight("w", 1, 2, 2, 3, 3)), List.of("y"), old);
        e = assertThrows(ModelException.class, () -> OnnxModel.parse("mixed.onnx", mixed.toByteArray(), null));
        assertTrue(e.getMessage().startsWith("mixed.onnx: local function local.Block imports opset 11 of the default"
                + " domain, the model 13"), e.getMessage());
    }

    @Test
    void aModelWithoutFunctionsIsReadAsItIs() {
        ModelProto m = Graphs.model(13, List.of(Graphs.node("Relu", "r", List.of("x"), List.of("y"))), List.of(),
                List.of(Graphs.floatValue("x", X)), List.of(Graphs.floatValue("y")));
        OnnxModel e = OnnxModel.parse("plain.onnx", m.toByteArray(), null);
        assertEquals(Map.of(), e.inlinedFunctions());
        assertEquals(0, e.proto().getMetadataPropsCount());
    }
}
