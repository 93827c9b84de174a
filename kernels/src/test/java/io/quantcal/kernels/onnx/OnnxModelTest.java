package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.StringStringEntryProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OnnxModelTest {

    private static final float[] W = {0.5f, -1.25f, 2f, 0.75f, -0.5f, 1f}; // [2, 3]
    private static final float[] B = {0.1f, -0.2f, 0.3f};

    /** y = Relu(x · W + B), x [N, 2]. */
    private static ModelProto gemmModel(TensorProto w, TensorProto b) {
        return Graphs.model(13,
                List.of(Graphs.node("Gemm", "fc", List.of("x", "W", "B"), List.of("h")),
                        Graphs.node("Relu", "relu", List.of("h"), List.of("y"))),
                List.of(w, b), List.of(Graphs.floatValue("x", -1, 2)), List.of(Graphs.floatValue("y", -1, 3)));
    }

    private static ModelProto inlineModel() {
        return gemmModel(Graphs.floatTensor("W", W, 2, 3), Graphs.floatTensor("B", B, 3));
    }

    private static OnnxModel parse(ModelProto m) {
        return OnnxModel.parse("m.onnx", m.toByteArray(), ExternalDataResolver.none());
    }

    private static ModelException parseError(byte[] bytes) {
        return assertThrows(ModelException.class, () -> OnnxModel.parse("broken.onnx", bytes, ExternalDataResolver.none()));
    }

    private static byte[] le(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }

    private static TensorProto external(String name, float[] data, String location, long offset, long... dims) {
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(location))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue(Long.toString(offset)))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("length").setValue(Long.toString(4L * data.length)));
        for (long d : dims) t.addDims(d);
        return t.build();
    }

    // ---------------------------------------------------------------- errors

    @Test
    void bytesThatAreNotAModelAreRefusedNamingTheFile() {
        ModelException e = parseError(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02});
        assertTrue(e.getMessage().startsWith("broken.onnx: "), e.getMessage());
        byte[] full = inlineModel().toByteArray();
        e = parseError(Arrays.copyOf(full, full.length / 2));
        assertTrue(e.getMessage().contains("broken.onnx"), e.getMessage());
        assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("no graph"), e.getMessage());
    }

    @Test
    void aModelWithoutAGraphIsRefused() {
        ModelProto noGraph = inlineModel().toBuilder().clearGraph().build();
        assertTrue(parseError(noGraph.toByteArray()).getMessage().contains("no graph"));
        assertTrue(parseError(new byte[0]).getMessage().contains("no graph"));
    }

    @Test
    void irVersionsUpToThirteenAreReadAndNewerOnesRefused() {
        // ONNX 1.21 writes IR 13: read, the fields ND4J's IR-8 classes do not know kept (NodeProto.metadata_props = 9)
        ModelProto.Builder b = inlineModel().toBuilder().setIrVersion(13);
        onnx.Onnx.NodeProto n = b.getGraph().getNode(0);
        org.nd4j.shade.protobuf.UnknownFieldSet meta = org.nd4j.shade.protobuf.UnknownFieldSet.newBuilder()
                .addField(9, org.nd4j.shade.protobuf.UnknownFieldSet.Field.newBuilder().addLengthDelimited(
                        onnx.Onnx.StringStringEntryProto.newBuilder().setKey("k").setValue("v").build().toByteString()).build())
                .build();
        b.setGraph(b.getGraph().toBuilder().setNode(0, n.toBuilder().setUnknownFields(meta)));
        OnnxModel m = parse(b.build());
        assertEquals(13, m.proto().getIrVersion());
        assertTrue(m.proto().getGraph().getNode(0).getUnknownFields().hasField(9), "node metadata carried through");
        ModelException e = parseError(inlineModel().toBuilder().setIrVersion(14).build().toByteArray());
        assertEquals("broken.onnx: unsupported ONNX IR version 14: quantcal reads IR versions 3..13 (re-export the model"
                + " with an older exporter)", e.getMessage());
    }

    @Test
    void opsetsOutsideTenToTwentySixAreRefused() {
        ModelProto newest = inlineModel().toBuilder().setOpsetImport(0,
                OperatorSetIdProto.newBuilder().setDomain("").setVersion(26)).build();
        assertEquals(26, parse(newest).opset());
        ModelProto high = inlineModel().toBuilder().setOpsetImport(0,
                OperatorSetIdProto.newBuilder().setDomain("").setVersion(27)).build();
        assertEquals("broken.onnx: unsupported opset 27: quantcal supports 10..26 (26: the newest the bundled ONNX Runtime"
                + " runs)", parseError(high.toByteArray()).getMessage());
        ModelProto low = inlineModel().toBuilder().setOpsetImport(0,
                OperatorSetIdProto.newBuilder().setDomain("").setVersion(6)).build();
        assertTrue(parseError(low.toByteArray()).getMessage().startsWith("broken.onnx: unsupported opset 6: quantcal"
                + " upgrades opsets 7..9 to 10 and reads 10..26"));
        ModelProto onlyCustom = inlineModel().toBuilder().setOpsetImport(0,
                OperatorSetIdProto.newBuilder().setDomain("com.example").setVersion(1)).build();
        assertTrue(parseError(onlyCustom.toByteArray()).getMessage().contains("no opset import for the default"));
        ModelProto aiOnnx = inlineModel().toBuilder().setOpsetImport(0,
                OperatorSetIdProto.newBuilder().setDomain("ai.onnx").setVersion(17)).build();
        assertEquals(17, parse(aiOnnx).opset());
    }

    @Test
    void duplicateNodeNamesAreRefused() {
        ModelProto m = Graphs.model(13,
                List.of(Graphs.node("Relu", "act", List.of("x"), List.of("a")),
                        Graphs.node("Relu", "act", List.of("a"), List.of("y"))),
                List.of(), List.of(Graphs.floatValue("x", 2)), List.of(Graphs.floatValue("y", 2)));
        ModelException e = parseError(m.toByteArray());
        assertTrue(e.getMessage().contains("duplicate node name act"), e.getMessage());
    }

    // ---------------------------------------------------------------- external data

    @Test
    void externalDataIsReadAtItsOffsetsAndInlined(@TempDir Path dir) throws Exception {
        // data file: 12 bytes of padding, then B, then W: offsets must be honoured
        byte[] pad = new byte[12];
        Arrays.fill(pad, (byte) 0x7f);
        ByteBuffer file = ByteBuffer.allocate(12 + 4 * B.length + 4 * W.length);
        file.put(pad).put(le(B)).put(le(W));
        Files.write(dir.resolve("weights.bin"), file.array());
        ModelProto ext = gemmModel(external("W", W, "weights.bin", 12 + 4L * B.length, 2, 3),
                external("B", B, "weights.bin", 12, 3));
        Path modelFile = dir.resolve("ext.onnx");
        Files.write(modelFile, ext.toByteArray());

        OnnxModel loaded = OnnxModel.load(modelFile);
        assertEquals(modelFile.toString(), loaded.source());
        assertArrayEquals(W, loaded.initializerFloats("W"));
        assertArrayEquals(B, loaded.initializerFloats("B"));
        for (TensorProto t : loaded.graph().getInitializerList()) {
            assertEquals(TensorProto.DataLocation.DEFAULT, t.getDataLocation());
            assertEquals(0, t.getExternalDataCount());
        }
        // self-contained: ONNX Runtime runs it from bytes alone and agrees with the inline model
        FloatTensor x = FloatTensor.of("x", new float[] {1, 2, -3, 0.5f}, 2, 2);
        try (ModelRunner a = ModelRunner.open(OnnxModel.parse("again.onnx", loaded.toByteArray(), null), RunnerOptions.singleThreaded());
             ModelRunner b = ModelRunner.open(parse(inlineModel()), RunnerOptions.singleThreaded())) {
            assertArrayEquals(b.run(x).get("y").data(), a.run(x).get("y").data());
        }
        assertEquals(parse(inlineModel()).sha256(), OnnxModel.parse("m.onnx", loaded.toByteArray(), null).sha256());

        // the same through a resolver (what the job passes for Hadoop paths): each tensor's range alone is read, so
        // that a data file may be larger than a Java array
        List<String> reads = new ArrayList<>();
        OnnxModel viaResolver = OnnxModel.parse("hdfs://x/ext.onnx", ext.toByteArray(), new ExternalDataResolver() {
            @Override
            public byte[] read(String loc) {
                throw new AssertionError("the whole of " + loc);
            }

            @Override
            public byte[] read(String loc, long offset, long length) {
                reads.add(loc + "@" + offset + "+" + length);
                return Arrays.copyOfRange(file.array(), (int) offset, (int) (offset + length));
            }
        });
        assertEquals(List.of("weights.bin@24+24", "weights.bin@12+12"), reads);
        assertArrayEquals(W, viaResolver.initializerFloats("W"));
        assertArrayEquals(B, viaResolver.initializerFloats("B"));
    }

    @Test
    void missingOrShortExternalDataIsNamed(@TempDir Path dir) throws Exception {
        ModelProto ext = gemmModel(external("W", W, "weights.bin", 0, 2, 3), Graphs.floatTensor("B", B, 3));
        Path modelFile = dir.resolve("ext.onnx");
        Files.write(modelFile, ext.toByteArray());
        ModelException e = assertThrows(ModelException.class, () -> OnnxModel.load(modelFile));
        assertTrue(e.getMessage().contains(modelFile.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("initializer W"), e.getMessage());
        assertTrue(e.getMessage().contains("weights.bin"), e.getMessage());

        Files.write(dir.resolve("weights.bin"), new byte[10]);
        e = assertThrows(ModelException.class, () -> OnnxModel.load(modelFile));
        assertTrue(e.getMessage().contains("has 10 bytes"), e.getMessage());

        e = assertThrows(ModelException.class, () -> OnnxModel.parse("self.onnx", ext.toByteArray(), null));
        assertTrue(e.getMessage().contains("no external data resolver"), e.getMessage());

        ModelProto escaping = gemmModel(external("W", W, "../outside.bin", 0, 2, 3), Graphs.floatTensor("B", B, 3));
        Files.write(modelFile, escaping.toByteArray());
        e = assertThrows(ModelException.class, () -> OnnxModel.load(modelFile));
        assertTrue(e.getMessage().contains("initializer W: cannot read external data file ../outside.bin: external data"
                + " location ../outside.bin leaves the model directory"), e.getMessage());

        Path secret = Files.write(dir.getParent().resolve("secret-" + dir.getFileName() + ".bin"), new byte[24]);
        ModelProto absolute = gemmModel(external("W", W, secret.toString(), 0, 2, 3), Graphs.floatTensor("B", B, 3));
        Files.write(modelFile, absolute.toByteArray());
        e = assertThrows(ModelException.class, () -> OnnxModel.load(modelFile));
        assertTrue(e.getMessage().contains("is absolute; ONNX places external data relative to the model's directory"), e.getMessage());

        // a symbolic link inside the directory that points outside it
        Files.createSymbolicLink(dir.resolve("link.bin"), secret);
        Files.write(modelFile, gemmModel(external("W", W, "link.bin", 0, 2, 3), Graphs.floatTensor("B", B, 3)).toByteArray());
        e = assertThrows(ModelException.class, () -> OnnxModel.load(modelFile));
        assertTrue(e.getMessage().contains("leaves the model directory " + dir.toAbsolutePath().normalize()
                + " through a symbolic link"), e.getMessage());
        Files.delete(secret);
    }

    @Test
    void externalDataLocationsAreCheckedOnTheirText() throws Exception {
        assertEquals("a/b.bin", ExternalDataResolver.insideModelDirectory("./a/x/../b.bin"));
        assertEquals("w.bin", ExternalDataResolver.insideModelDirectory("w.bin"));
        for (String bad : List.of("../w.bin", "a/../../w.bin", "/etc/passwd", "file:/etc/passwd", "hdfs://nn/w.bin",
                "C:\\w.bin", "..\\w.bin", "", ".")) {
            assertThrows(java.io.IOException.class, () -> ExternalDataResolver.insideModelDirectory(bad), bad);
        }
    }

    // ---------------------------------------------------------------- accessors

    @Test
    void initializersReadFromRawDataOrFloatData() {
        TensorProto.Builder fd = TensorProto.newBuilder().setName("W").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(2).addDims(3);
        for (float v : W) fd.addFloatData(v);
        OnnxModel m = parse(gemmModel(fd.build(), Graphs.floatTensor("B", B, 3)));
        assertArrayEquals(W, m.initializerFloats("W"));
        assertArrayEquals(B, m.initializerFloats("B"));
        assertArrayEquals(new long[] {2, 3}, m.shape("W"));
        assertArrayEquals(new long[] {-1, 2}, m.shape("x"));
        assertTrue(m.isInitializer("W"));
        assertFalse(m.isInitializer("x"));
        assertThrows(ModelException.class, () -> m.shape("h"));
        ModelException e = assertThrows(ModelException.class, () -> m.initializerFloats("nope"));
        assertTrue(e.getMessage().contains("nope"));
    }

    @Test
    void inputsLeaveOutInitializersListedAsInputs() {
        ModelProto m = inlineModel();
        ModelProto ir3 = m.toBuilder().setIrVersion(3).setGraph(m.getGraph().toBuilder()
                .addInput(Graphs.floatValue("W", 2, 3)).addInput(Graphs.floatValue("B", 3))).build();
        OnnxModel model = parse(ir3);
        assertEquals(List.of(new TensorInfo("x", TensorProto.DataType.FLOAT_VALUE, new long[] {-1, 2})), model.inputs());
        assertEquals(List.of(new TensorInfo("y", TensorProto.DataType.FLOAT_VALUE, new long[] {-1, 3})), model.outputs());
        assertEquals(13, model.opset());
        assertEquals("fc", model.producer("h").getName());
        assertEquals(List.of("relu"), model.consumers("h").stream().map(NodeProto::getName).toList());
        assertNull(model.producer("x"));
    }

    @Test
    void unnamedNodesGetDeterministicNamesThatTheModelCarries() {
        ModelProto m = Graphs.model(13,
                List.of(Graphs.node("Relu", "", List.of("x"), List.of("a")),
                        Graphs.node("Relu", "Relu_0", List.of("a"), List.of("b")),
                        Graphs.node("Neg", "", List.of("b"), List.of("y"))),
                List.of(), List.of(Graphs.floatValue("x", 2)), List.of(Graphs.floatValue("y", 2)));
        OnnxModel model = parse(m);
        List<String> names = model.nodes().stream().map(NodeProto::getName).toList();
        assertEquals(List.of("Relu_0_1", "Relu_0", "Neg_2"), names);
        // the names are in the bytes: a re-parse (e.g. on an executor) sees the same nodes
        assertEquals(names, parse(ModelProto.newBuilder(model.proto()).build()).nodes().stream()
                .map(NodeProto::getName).toList());
        assertEquals(model.sha256(), OnnxModel.parse("m.onnx", model.toByteArray(), null).sha256());
    }

    @Test
    void sha256IdentifiesTheModelBytes() throws Exception {
        OnnxModel a = parse(inlineModel());
        assertEquals(64, a.sha256().length());
        assertEquals(a.sha256(), parse(inlineModel()).sha256());
        float[] w2 = W.clone();
        w2[0] += 1e-3f;
        assertNotEquals(a.sha256(), parse(gemmModel(Graphs.floatTensor("W", w2, 2, 3), Graphs.floatTensor("B", B, 3))).sha256());

        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bos)) {
            out.writeObject(a);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bos.toByteArray()))) {
            OnnxModel b = (OnnxModel) in.readObject();
            assertEquals(a.sha256(), b.sha256());
            assertEquals("m.onnx", b.source());
        }
    }

    @Test
    void rewritesMakeNewModels() {
        OnnxModel a = parse(inlineModel());
        OnnxModel b = a.withOpset(17);
        assertEquals(13, a.opset());
        assertEquals(17, b.opset());
        OnnxModel c = a.withGraph(a.graph().toBuilder().addNode(Graphs.node("Neg", "", List.of("y"), List.of("z"))).build());
        assertEquals("Neg_2", c.nodes().get(2).getName());
        assertEquals(2, a.nodes().size());
        assertThrows(IllegalArgumentException.class, () -> a.withOpset(27));
    }

    @Test
    void constantsComeFromInitializersAndConstantNodes() {
        ModelProto m = Graphs.model(13,
                List.of(Graphs.node("Constant", "k", List.of(), List.of("six"),
                                Map.of("value", Graphs.floatTensor("v", new float[] {6f}))),
                        Graphs.node("Clip", "clip", List.of("x", "", "six"), List.of("y"))),
                List.of(), List.of(Graphs.floatValue("x", 2)), List.of(Graphs.floatValue("y", 2)));
        OnnxModel model = parse(m);
        assertArrayEquals(new float[] {6f}, model.constantFloats("six"));
        assertNull(model.constantFloats("x"));
        assertTrue(model.hasTensor("six"));
    }
}
