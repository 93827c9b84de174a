package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.StringStringEntryProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Models larger than one protobuf message (2 GiB), taken down the same path at a size a test can afford: the system
 * property {@code quantcal.large-model-bytes} lowers the threshold. A large model is a skeleton and its big tensors
 * apart ({@link OnnxModel#parts}), written as an ONNX file with external data, read back one tensor range at a time,
 * Java-serialized in parts, and run by ONNX Runtime from a memory-mapped file: every route gives the model's own
 * outputs, bit for bit.
 */
class LargeModelTest {

    @AfterEach
    void clear() {
        System.clearProperty("quantcal.large-model-bytes");
    }

    private static OnnxModel model() {
        return TestModels.smallCnn(21);
    }

    private static FloatTensor input() {
        return FloatTensor.of("input", TestModels.gaussian(new Random(4), 2 * 3 * 8 * 8, 1.0), new long[] {2, 3, 8, 8});
    }

    private static float[] run(OnnxModel m) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(input()).get("logits").data();
        }
    }

    @Test
    void aLargeModelIsItsSkeletonAndItsBigTensorsAndRunsTheSame() throws Exception {
        OnnxModel m = model();
        float[] want = run(m);
        byte[] whole = m.toByteArray();
        String smallSha = m.sha256();
        assertFalse(m.large());
        // an ordinary model's hash is its serialized bytes' (streamed through the digest, not held)
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(whole)),
                smallSha);

        // a model of more than 1/16 of the large threshold reaches ONNX Runtime through a file with external data too
        System.setProperty("quantcal.large-model-bytes", String.valueOf(m.dataBytes() * 4));
        OnnxModel medium = OnnxModel.parse("medium.onnx", whole, null);
        assertFalse(medium.large());
        assertFalse(medium.withExternalDataAlways("m.data").data().isEmpty(), "its big tensors in the data file");
        assertTrue(medium.withExternalData("m.data").data().isEmpty(), "written as one file, as before");
        assertArrayEquals(want, run(medium));

        System.setProperty("quantcal.large-model-bytes", "2000"); // tensors of 125 bytes and more go outside
        OnnxModel big = OnnxModel.parse("large.onnx", whole, null);
        assertTrue(big.large(), big.dataBytes() + " bytes of data");
        OnnxModel.Parts parts = big.parts();
        List<String> outside = parts.outside().stream().map(TensorProto::getName).toList();
        assertTrue(outside.containsAll(List.of("conv1.weight", "pw.weight", "fc1.weight", "fc2.weight")), outside.toString());
        for (TensorProto t : parts.outside()) assertTrue(t.getRawData().size() >= 125, t.getName());
        ModelProto skeleton = ModelProto.parseFrom(parts.skeleton());
        for (TensorProto t : skeleton.getGraph().getInitializerList()) {
            boolean out = outside.contains(t.getName());
            assertEquals(out, t.getDataLocation() == TensorProto.DataLocation.EXTERNAL, t.getName());
            assertEquals(out, t.getRawData().isEmpty(), t.getName());
        }
        assertThrows(IllegalStateException.class, big::toByteArray, "one message is what a large model is not");
        assertNotEquals(smallSha, big.sha256(), "the large form hashes its parts");
        assertEquals(big.sha256(), OnnxModel.parse("again.onnx", whole, null).sha256());

        // the parts put back together, and ONNX Runtime from a memory-mapped file
        Map<String, ByteString> data = new HashMap<>();
        for (TensorProto t : parts.outside()) data.put(t.getName(), t.getRawData());
        OnnxModel back = OnnxModel.fromParts("large.onnx", parts.skeleton(), data);
        assertEquals(big.sha256(), back.sha256());
        assertArrayEquals(want, run(big));
        assertArrayEquals(want, run(back));
        // a pass's session reads the mapped weights (pre-packing off), a timing session packs them: the same outputs
        assertFalse(RunnerOptions.singleThreaded().packLargeWeights());
        try (ModelRunner r = ModelRunner.open(big, RunnerOptions.singleThreaded().packingLargeWeights())) {
            assertArrayEquals(want, r.run(input()).get("logits").data());
        }

        // Java serialization goes through the parts too
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (ObjectOutputStream o = new ObjectOutputStream(buf)) {
            o.writeObject(big);
        }
        OnnxModel read;
        try (ObjectInputStream i = new ObjectInputStream(new ByteArrayInputStream(buf.toByteArray()))) {
            read = (OnnxModel) i.readObject();
        }
        assertEquals(big.sha256(), read.sha256());

        System.clearProperty("quantcal.large-model-bytes");
        assertArrayEquals(whole, back.toByteArray(), "the same model, once it is small again");
    }

    @Test
    void aLargeModelIsWrittenWithExternalDataAndReadBackOneTensorAtATime(@TempDir Path dir) throws Exception {
        OnnxModel m = model();
        float[] want = run(m);
        byte[] whole = m.toByteArray();
        String sha = m.sha256();
        System.setProperty("quantcal.large-model-bytes", "2000");
        OnnxModel big = OnnxModel.parse("large.onnx", whole, null);
        OnnxModel.WithExternalData w = big.withExternalData("large.onnx.data");
        Files.write(dir.resolve("large.onnx"), w.model());
        try (var out = Files.newOutputStream(dir.resolve("large.onnx.data"))) {
            w.writeData(out);
        }
        ModelProto written = ModelProto.parseFrom(w.model());
        int external = 0;
        for (TensorProto t : written.getGraph().getInitializerList()) {
            if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) continue;
            external++;
            Map<String, String> kv = new HashMap<>();
            for (StringStringEntryProto e : t.getExternalDataList()) kv.put(e.getKey(), e.getValue());
            assertEquals("large.onnx.data", kv.get("location"));
            assertEquals(0, Long.parseLong(kv.get("offset")) % 4096, t.getName() + " at a 4 KiB boundary (memory mapping)");
        }
        assertEquals(big.parts().outside().size(), external);

        // read back through the directory resolver's ranged reads: the same model
        System.clearProperty("quantcal.large-model-bytes");
        OnnxModel read = OnnxModel.load(dir.resolve("large.onnx"));
        assertEquals(sha, OnnxModel.parse("x", read.toByteArray(), null).sha256());
        assertArrayEquals(want, run(read));
        // and the resolver refuses a range past the end of the file, naming both
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> ExternalDataResolver.directory(dir)
                .read("large.onnx.data", Files.size(dir.resolve("large.onnx.data")) - 8, 16));
        assertTrue(e.getMessage().contains("but the tensor wants offset"), e.getMessage());
    }
}
