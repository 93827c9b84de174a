package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorProto.DataType;
import onnx.Onnx.ValueInfoProto;
import org.junit.jupiter.api.Test;
import org.nd4j.shade.protobuf.ByteString;

/** Float16 models as the float32 models they stand for, checked against ONNX Runtime's own Cast and kernels. */
public class Float16UpcastTest {

    static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    static OrtSession session(ModelProto m) throws Exception {
        return ENV.createSession(m.toByteArray(), new OrtSession.SessionOptions());
    }

    /** ONNX Runtime's Cast float → float16 of {@code x}: the float16 bits, little-endian. */
    static byte[] ortToHalf(float[] x) throws Exception {
        ModelProto m = Graphs.model(13, List.of(Graphs.node("Cast", "c", List.of("x"), List.of("y"),
                        Map.of("to", (long) DataType.FLOAT16_VALUE))), List.of(),
                List.of(Graphs.floatValue("x", x.length)), List.of(Graphs.value("y", DataType.FLOAT16, x.length)));
        try (OrtSession s = session(m); OnnxTensor t = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(x), new long[] {x.length});
             OrtSession.Result r = s.run(Map.of("x", t))) {
            ByteBuffer b = ((OnnxTensor) r.get(0)).getByteBuffer();
            byte[] out = new byte[2 * x.length];
            b.get(out);
            return out;
        }
    }

    @Test
    void everyFloat16ValueBecomesTheFloat32OnnxRuntimesCastGives() throws Exception {
        int n = 65536;
        float[] ort = ortToFloat(allBits(), DataType.FLOAT16);
        int nans = 0;
        for (int i = 0; i < n; i++) {
            float ours = ConstantFolder.halfToFloat((short) i);
            if (Float.isNaN(ort[i])) {
                assertTrue(Float.isNaN(ours), "bits " + Integer.toHexString(i));
                nans++;
            } else {
                // bit for bit: signed zeros, the 1023·2 subnormals, ±65504, ±inf
                assertEquals(Float.floatToRawIntBits(ort[i]), Float.floatToRawIntBits(ours), "bits " + Integer.toHexString(i));
            }
        }
        assertEquals(2 * 1023, nans);
    }

    /** x [N, 3, 8, 8] → conv1 → relu → depthwise conv → Clip 0..6 → GAP → Flatten → fc → logits [N, 5], float32. */
    static OnnxModel float32Model() {
        TestModels.Builder b = new TestModels.Builder(17);
        b.conv("conv1", "x", "c1", 3, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("dw", "r1", "c2", 8, 8, 3, 8, 1, 1, true).clip("clip2", "c2", "r2", 0, 6);
        b.classifier("r2", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 3, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    /**
     * {@code m} (one float input, one float output) as onnxconverter-common's float16 conversion with keep_io_types
     * writes it: every float initializer float16 (rounded by ONNX Runtime's Cast), the input cast to float16 first,
     * the output cast back to float32.
     */
    public static ModelProto float16Version(OnnxModel m) throws Exception {
        var g = m.graph().toBuilder();
        String in = g.getInput(0).getName();
        String out = g.getOutput(0).getName();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (t.getDataType() != DataType.FLOAT_VALUE) continue;
            g.setInitializer(i, t.toBuilder().setDataType(DataType.FLOAT16_VALUE).clearFloatData()
                    .setRawData(ByteString.copyFrom(ortToHalf(m.initializerFloats(t.getName())))));
        }
        List<NodeProto> nodes = new ArrayList<>();
        nodes.add(Graphs.node("Cast", "graph_input_cast0", List.of(in), List.of(in + "16"), Map.of("to", (long) DataType.FLOAT16_VALUE)));
        for (NodeProto n : g.getNodeList()) {
            NodeProto.Builder nb = n.toBuilder();
            for (int i = 0; i < nb.getInputCount(); i++) if (nb.getInput(i).equals(in)) nb.setInput(i, in + "16");
            for (int i = 0; i < nb.getOutputCount(); i++) if (nb.getOutput(i).equals(out)) nb.setOutput(i, out + "16");
            nodes.add(nb.build());
        }
        nodes.add(Graphs.node("Cast", "graph_output_cast0", List.of(out + "16"), List.of(out), Map.of("to", (long) DataType.FLOAT_VALUE)));
        g.clearNode().addAllNode(nodes);
        var t16 = g.getInput(0).getType().getTensorType().toBuilder().setElemType(DataType.FLOAT16_VALUE);
        g.addValueInfo(g.getInput(0).toBuilder().setName(in + "16").setType(g.getInput(0).getType().toBuilder().setTensorType(t16)));
        return m.proto().toBuilder().setGraph(g).build();
    }

    static float[] run(ModelProto m, float[] x) throws Exception {
        try (OrtSession s = session(m);
             OnnxTensor t = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(x), new long[] {4, 3, 8, 8});
             OrtSession.Result r = s.run(Map.of("x", t))) {
            float[] out = new float[20];
            ((OnnxTensor) r.get(0)).getFloatBuffer().get(out);
            return out;
        }
    }

    @Test
    void aFloat16ModelBecomesTheFloat32ModelOfItsRoundedWeights() throws Exception {
        OnnxModel fp32 = float32Model();
        ModelProto half = float16Version(fp32);
        Float16Upcast.Result r = Float16Upcast.rewrite(OnnxModel.parse("half.onnx", half.toByteArray(), ExternalDataResolver.none()));
        // 6 initializers (two Convs' weight and bias, fc's) + Clip's two bounds; the two Casts; x16's declared value
        assertEquals(8, r.tensors());
        assertEquals(1, r.casts(), "the input's Cast to float16 (the output's Cast already goes to float32)");
        assertEquals(1, r.values());
        OnnxModel up = r.model();
        for (TensorProto t : up.graph().getInitializerList()) assertEquals(DataType.FLOAT_VALUE, t.getDataType(), t.getName());
        for (ValueInfoProto v : up.graph().getValueInfoList()) {
            assertEquals(DataType.FLOAT_VALUE, v.getType().getTensorType().getElemType(), v.getName());
        }
        assertEquals(List.of("conv1", "dw", "fc"), up.quantizableNodes().stream().map(QuantizableNode::name).toList());
        float[] x = TestModels.uniform(new Random(2), 4 * 3 * 64, -1, 1);
        // the reference: the float32 model with every weight rounded to float16 by ONNX Runtime (there and back)
        var g = fp32.graph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            TensorProto h = half.getGraph().getInitializerList().stream().filter(q -> q.getName().equals(t.getName()))
                    .findFirst().orElseThrow();
            g.setInitializer(i, Graphs.floatTensor(t.getName(), ortToFloat(h.getRawData().toByteArray(), DataType.FLOAT16),
                    Tensors.dims(t)));
        }
        float[] reference = run(fp32.proto().toBuilder().setGraph(g).build(), x);
        assertArrayEquals(reference, run(up.proto(), x), "float32 arithmetic on the float16 weights, bit for bit");
        // and it computes what the float16 model computes in ONNX Runtime (whose CPU provider runs these float16 ops
        // through float32 kernels, so here even bit for bit), within float16's own rounding of the activations
        float[] halfOut = run(half, x);
        for (int i = 0; i < reference.length; i++) {
            assertEquals(halfOut[i], reference[i], 0.01 * (1 + Math.abs(reference[i])), "logit " + i);
        }
    }

    @Test
    void aFloat32ModelIsLeftAsItIs() {
        OnnxModel m = float32Model();
        Float16Upcast.Result r = Float16Upcast.rewrite(m);
        assertSame(m, r.model());
        assertFalse(r.changed());
    }

    /** Every 16-bit pattern, 0 to 65535, little-endian. */
    static byte[] allBits() {
        ByteBuffer b = ByteBuffer.allocate(2 * 65536).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 65536; i++) b.putShort((short) i);
        return b.array();
    }

    /** ONNX Runtime's Cast to float32 of little-endian float16 or bfloat16 ({@code type}) bits. */
    static float[] ortToFloat(byte[] bits, DataType type) throws Exception {
        int n = bits.length / 2;
        ByteBuffer b = ByteBuffer.allocateDirect(bits.length).order(ByteOrder.nativeOrder());
        b.put(bits).rewind();
        ModelProto m = Graphs.model(13, List.of(Graphs.node("Cast", "c", List.of("h"), List.of("y"),
                        Map.of("to", (long) DataType.FLOAT_VALUE))), List.of(),
                List.of(Graphs.value("h", type, n)), List.of(Graphs.floatValue("y", n)));
        OnnxJavaType javaType = type == DataType.BFLOAT16 ? OnnxJavaType.BFLOAT16 : OnnxJavaType.FLOAT16;
        float[] out = new float[n];
        try (OrtSession s = session(m); OnnxTensor t = OnnxTensor.createTensor(ENV, b, new long[] {n}, javaType);
             OrtSession.Result r = s.run(Map.of("h", t))) {
            ((OnnxTensor) r.get(0)).getFloatBuffer().get(out);
        }
        return out;
    }

    @Test
    void everyBfloat16ValueBecomesTheFloat32OnnxRuntimesCastGives() throws Exception {
        int n = 65536;
        float[] ort = ortToFloat(allBits(), DataType.BFLOAT16);
        for (int i = 0; i < n; i++) {
            float ours = Float16Upcast.bfloatToFloat((short) i);
            if (Float.isNaN(ort[i])) assertTrue(Float.isNaN(ours), "bits " + Integer.toHexString(i));
            else assertEquals(Float.floatToRawIntBits(ort[i]), Float.floatToRawIntBits(ours), "bits " + Integer.toHexString(i));
        }
        // and as a model's weight: a bfloat16 initializer behind a Cast to float becomes a float32 initializer
        short[] bits = {0x3f80, (short) 0xbfc0, 0x4049, 0x0001}; // 1, -1.5, 3.140625, the smallest subnormal
        ByteBuffer raw = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (short v : bits) raw.putShort(v);
        TensorProto w = TensorProto.newBuilder().setName("w16").setDataType(DataType.BFLOAT16_VALUE).addDims(4)
                .setRawData(ByteString.copyFrom(raw.array())).build();
        ModelProto weights = Graphs.model(13, List.of(Graphs.node("Cast", "wc", List.of("w16"), List.of("w"),
                        Map.of("to", (long) DataType.FLOAT_VALUE)), Graphs.node("Mul", "mul", List.of("x", "w"), List.of("y"))),
                List.of(w), List.of(Graphs.floatValue("x", 4)), List.of(Graphs.floatValue("y", 4)));
        Float16Upcast.Result r = Float16Upcast.rewrite(OnnxModel.parse("bf16.onnx", weights.toByteArray(), ExternalDataResolver.none()));
        assertEquals(1, r.tensors());
        assertArrayEquals(new float[] {1f, -1.5f, 3.140625f, Float.intBitsToFloat(0x10000)}, r.model().initializerFloats("w16"));
    }

    @Test
    void aFloat64ModelIsRefusedNotRounded() {
        // float64 → float32 would change the weights: not done silently; the error says what to do
        ByteBuffer raw = ByteBuffer.allocate(8 * 9).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 9; i++) raw.putDouble(0.1 * i);
        TensorProto w = TensorProto.newBuilder().setName("w").setDataType(DataType.DOUBLE_VALUE).addAllDims(List.of(1L, 1L, 3L, 3L))
                .setRawData(ByteString.copyFrom(raw.array())).build();
        ModelProto m = Graphs.model(13, List.of(Graphs.node("Conv", "conv", List.of("x", "w"), List.of("y"))), List.of(w),
                List.of(Graphs.value("x", DataType.DOUBLE, -1, 1, 8, 8)), List.of(Graphs.value("y", DataType.DOUBLE, -1, 1, 6, 6)));
        OnnxModel model = Float16Upcast.rewrite(OnnxModel.parse("f64.onnx", m.toByteArray(), ExternalDataResolver.none())).model();
        ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class, model::quantizableNodes);
        assertTrue(e.getMessage().startsWith("f64.onnx: "), e.getMessage());
        assertTrue(e.getMessage().endsWith(": weight w is DOUBLE, expected a FLOAT initializer (quantcal quantizes float32 models"
                + " (float16 and bfloat16 ones as float32); export this one in float32)"), e.getMessage());
    }
}
