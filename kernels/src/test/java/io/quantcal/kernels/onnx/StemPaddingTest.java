package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

class StemPaddingTest {

    /** x [N, c, 8, 8] → conv1 (c→8, 3×3) → relu → conv2 (8→8, 3×3) → GAP → flatten → fc (8→5). */
    static OnnxModel stem(int c, long opset) {
        TestModels.Builder b = new TestModels.Builder(3 + c);
        b.conv("conv1", "x", "c1", c, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", 8, 8, 3, 1, 1, 1, true);
        b.classifier("c2", 8, 5);
        return b.build(opset, List.of(Graphs.floatValue("x", -1, c, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    static FloatTensor input(int c) {
        return FloatTensor.of("x", TestModels.uniform(new Random(5), 4 * c * 64, -1, 2), 4, c, 8, 8);
    }

    static Map<String, QuantParams> weights(OnnxModel m, boolean perChannel) {
        return weights(m, perChannel, 8);
    }

    static Map<String, QuantParams> weights(OnnxModel m, boolean perChannel, int bits) {
        Map<String, QuantParams> w = new LinkedHashMap<>();
        for (QuantizableNode n : m.quantizableNodes()) {
            w.put(n.weight(), QdqExporterTest.weightParams(m.initializerFloats(n.weight()), m.shape(n.weight()),
                    perChannel ? n.weightAxis() : -1, bits));
        }
        return w;
    }

    static float[] run(OnnxModel m, FloatTensor x, OrtSession.SessionOptions.OptLevel level) {
        try (ModelRunner r = ModelRunner.open(m, new RunnerOptions(1, 1, level))) {
            return r.run(x).get("logits").data();
        }
    }

    /** The padded and unpadded exports of {@code m}, checked to compute the same logits in ONNX Runtime. */
    static OnnxModel checkSameNumbers(OnnxModel m, int c, boolean perChannel, int bits) {
        return checkSameNumbers(m, input(c), perChannel, bits);
    }

    static OnnxModel checkSameNumbers(OnnxModel m, FloatTensor x, boolean perChannel, int bits) {
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, x);
        Map<String, QuantParams> w = weights(m, perChannel, bits);
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        OnnxModel padded = QdqExporter.export(m, a, w, Map.of(), QdqOptions.onnxRuntime(), p);
        // the operators' definitions one by one (float after DequantizeLinear: +0·0 terms change nothing) and
        // ONNX Runtime's integer kernels (QLinearConv on the fast path for the padded stem): the same logits. The
        // integer kernels are exact with 7-bit weights on every CPU; 8-bit int8 weights on a CPU whose u8·s8 kernels
        // add pairs of products in saturating int16 (CpuFeatures) are computed exactly by neither model
        assertArrayEquals(run(plain, x, OrtSession.SessionOptions.OptLevel.NO_OPT),
                run(padded, x, OrtSession.SessionOptions.OptLevel.NO_OPT), 1e-6f);
        if (bits <= 7 || !CpuFeatures.u8s8Saturates()) {
            assertArrayEquals(run(plain, x, OrtSession.SessionOptions.OptLevel.ALL_OPT),
                    run(padded, x, OrtSession.SessionOptions.OptLevel.ALL_OPT));
        }
        return padded;
    }

    @Test
    void aOneAndAThreeChannelStemReadFourChannelsAndComputeTheSameLogits() {
        for (int c : new int[] {1, 3}) {
            for (int bits : new int[] {7, 8}) {
                OnnxModel padded = checkSameNumbers(stem(c, 13), c, true, bits);
                NodeProto conv1 = padded.node("conv1");
                NodeProto wdq = padded.producer(conv1.getInput(1));
                String codes = wdq.getInput(0);
                assertArrayEquals(new long[] {8, 4, 3, 3}, padded.shape(codes), "c=" + c);
                int[] q = padded.initializerInts(codes);
                int[] z = padded.initializerInts(wdq.getInput(2));
                for (int out = 0; out < 8; out++) {
                    for (int ch = c; ch < 4; ch++) {
                        for (int k = 0; k < 9; k++) assertEquals(z[out], q[(out * 4 + ch) * 9 + k], "zero-valued code");
                    }
                }
                // x → QuantizeLinear (still reading the tensor the table names) → Pad → DequantizeLinear → conv1
                NodeProto xdq = padded.producer(conv1.getInput(0));
                NodeProto pad = padded.producer(xdq.getInput(0));
                assertEquals("Pad", pad.getOpType());
                NodeProto quantize = padded.producer(pad.getInput(0));
                assertEquals("QuantizeLinear", quantize.getOpType());
                assertEquals("x", quantize.getInput(0));
                assertArrayEquals(new int[] {0, 0, 0, 0, 0, 4 - c, 0, 0}, padded.initializerInts(pad.getInput(1)));
                assertEquals(xdq.getInput(2), pad.getInput(2), "padded with the input's zero point");
                // the 8-channel conv2 is left as it was
                assertArrayEquals(new long[] {8, 8, 3, 3}, padded.shape(padded.producer(padded.node("conv2").getInput(1)).getInput(0)));
                assertEquals(1, padded.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
            }
        }
    }

    @Test
    void perTensorWeightsArePaddedWithTheirZeroPointAndUint8WeightsOrOpsetsBelow11AreNot() {
        OnnxModel padded = checkSameNumbers(stem(1, 13), 1, false, 7);
        NodeProto wdq = padded.producer(padded.node("conv1").getInput(1));
        assertEquals(0, wdq.getInput(2).isEmpty() ? 0 : padded.shape(wdq.getInput(2)).length, "per tensor");
        int z = padded.initializerInts(wdq.getInput(2))[0];
        int[] q = padded.initializerInts(wdq.getInput(0));
        assertEquals(8 * 4 * 9, q.length);
        for (int out = 0; out < 8; out++) for (int ch = 1; ch < 4; ch++) assertEquals(z, q[(out * 4 + ch) * 9]);

        // uint8 weights (export.ort-weight-type = uint8) have no fast path to gain: left alone
        OnnxModel m = stem(1, 13);
        QdqPlacement pl = QdqPlacement.plan(m, QdqProfile.ORT);
        OnnxModel u8 = QdqExporter.exportUnpadded(m, QdqPlacementTest.calibrate(m, pl, input(1)), weights(m, true),
                Map.of(), QdqOptions.onnxRuntime().withUnsignedWeights(true), pl);
        assertSame(u8, StemPadding.pad(u8));

        // opset 10 (per-tensor weights need no raise): Pad's constant is a float attribute there, not the zero point
        OnnxModel old = stem(1, 10);
        QdqPlacement p = QdqPlacement.plan(old, QdqProfile.ORT);
        OnnxModel plain = QdqExporter.exportUnpadded(old, QdqPlacementTest.calibrate(old, p, input(1)), weights(old, false),
                Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals(10, plain.opset());
        assertSame(plain, StemPadding.pad(plain));
    }

    @Test
    void aStemWhoseQuantizedInputOtherNodesReadIsLeftAlone() {
        // x feeds conv1 and a second 1-channel conv: one shared Q/DQ pair, which conv1 alone cannot pad
        TestModels.Builder b = new TestModels.Builder(9);
        b.conv("conv1", "x", "c1", 1, 8, 3, 1, 1, 1, true);
        b.conv("side", "x", "c2", 1, 8, 3, 1, 1, 1, true);
        b.node(Graphs.node("Add", "add", List.of("c1", "c2"), List.of("s")));
        b.classifier("s", 8, 5);
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 1, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, input(1));
        OnnxModel plain = QdqExporter.exportUnpadded(m, a, weights(m, true), Map.of(), QdqOptions.onnxRuntime(), p);
        assertSame(plain, StemPadding.pad(plain));
        // the TensorRT profile is never padded (TensorRT chooses its own layouts)
        OnnxModel one = stem(1, 13);
        QdqPlacement trt = QdqPlacement.plan(one, QdqProfile.TENSORRT);
        Map<String, QuantParams> symmetric = new LinkedHashMap<>();
        for (var e : QdqPlacementTest.calibrate(one, trt, input(1)).entrySet()) {
            QuantParams u = e.getValue();
            symmetric.put(e.getKey(), SymmetricQuantizer.fromClip(8, true, Math.max(-u.rangeMin(0), u.rangeMax(0))));
        }
        OnnxModel t = QdqExporter.export(one, symmetric, weights(one, true), Map.of(), QdqOptions.tensorRt(), trt);
        assertNull(t.nodes().stream().filter(n -> n.getOpType().equals("Pad")).findFirst().orElse(null));
    }

    @Test
    void aStemWithSixteenBitActivationsIsLeftAloneAndLoads() {
        // W8 (int8 codes) with A16: ONNX Runtime has neither a 16-bit integer convolution nor a uint16 Pad, so the
        // stem keeps its own channels (it failed to load before: "no implementation for Pad(21)")
        OnnxModel m = stem(1, 13);
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        Map<String, QuantParams> a16 = new LinkedHashMap<>();
        QdqPlacementTest.calibrate(m, p, input(1)).forEach((t, q) -> a16.put(t, io.quantcal.kernels.quant.AffineQuantizer
                .fromRange(io.quantcal.kernels.quant.QuantGrid.of(16, false), q.rangeMin(0), q.rangeMax(0))));
        OnnxModel q = QdqExporter.export(m, a16, weights(m, true), Map.of(), QdqOptions.onnxRuntime(), p);
        assertEquals(0, q.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
        assertEquals(5, run(q, input(1), OrtSession.SessionOptions.OptLevel.ALL_OPT).length / 4, "runs: 4 samples x 5 logits");
    }

    /** {@link #stem} fed channels-last: x [N, 8, 8, c] → Transpose [0, 3, 1, 2] → conv1 ..., as tf2onnx writes it. */
    static OnnxModel stemNhwc(int c) {
        TestModels.Builder b = new TestModels.Builder(3 + c);
        b.node(Graphs.node("Transpose", "to_nchw", List.of("x"), List.of("xt"), Map.of("perm", new long[] {0, 3, 1, 2})));
        b.conv("conv1", "xt", "c1", c, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r1");
        b.conv("conv2", "r1", "c2", 8, 8, 3, 1, 1, 1, true);
        b.classifier("c2", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 8, 8, c)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    @Test
    void aChannelsLastStemIsPaddedByAOneByOneIntegerConvolutionWithTheSameLogits() throws Exception {
        for (int c : new int[] {1, 3}) {
            for (int bits : new int[] {7, 8}) {
                FloatTensor x = FloatTensor.of("x", TestModels.uniform(new Random(5), 4 * c * 64, -1, 2), 4, 8, 8, c);
                // the same logits as the unpadded export, by the operators' definitions and by ORT's integer kernels
                OnnxModel padded = checkSameNumbers(stemNhwc(c), x, true, bits);
                assertEquals(0, padded.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
                // Transpose → QuantizeLinear → DequantizeLinear → Conv 1×1 (c → 4) → QuantizeLinear → DequantizeLinear → conv1
                NodeProto xdq = padded.producer(padded.node("conv1").getInput(0));
                NodeProto q = padded.producer(xdq.getInput(0));
                assertEquals("QuantizeLinear", q.getOpType());
                assertEquals(xdq.getInput(1), q.getInput(1), "at the input's own scale");
                assertEquals(xdq.getInput(2), q.getInput(2), "and zero point");
                NodeProto channels = padded.producer(q.getInput(0));
                assertEquals("Conv", channels.getOpType());
                NodeProto wdq = padded.producer(channels.getInput(1));
                assertArrayEquals(new long[] {4, c, 1, 1}, padded.shape(wdq.getInput(0)));
                int[] w = padded.initializerInts(wdq.getInput(0));
                for (int o = 0; o < 4; o++) for (int i = 0; i < c; i++) assertEquals(o == i ? 1 : 0, w[o * c + i]);
                assertEquals(1f, padded.initializerFloats(wdq.getInput(1))[0]);
                NodeProto inDq = padded.producer(channels.getInput(0));
                NodeProto inQ = padded.producer(inDq.getInput(0));
                assertEquals("QuantizeLinear", inQ.getOpType());
                assertEquals("xt", inQ.getInput(0), "the QuantizeLinear still reads the tensor the table names");
                assertArrayEquals(new long[] {8, 4, 3, 3}, padded.shape(padded.producer(padded.node("conv1").getInput(1)).getInput(0)));
                // ONNX Runtime runs it channels-last, as a QLinearConv (three with conv1 and conv2), and with no Pad
                Map<String, Long> ops = TestModels.optimizedOps(padded, java.nio.file.Files.createTempFile("stem", ".onnx"));
                assertEquals(0L, ops.getOrDefault(":Pad", 0L), ops.toString());
                assertEquals(3L, ops.getOrDefault("com.microsoft:QLinearConv", 0L), ops.toString());
            }
        }
        // an NCHW input keeps the Pad (cheaper there: 17 µs against the convolution's 164 µs in resnet_small)
        OnnxModel nchw = checkSameNumbers(stem(3, 13), 3, true, 8);
        assertEquals(1, nchw.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
    }
}
