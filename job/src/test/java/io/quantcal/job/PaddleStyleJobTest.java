package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole run on a block as paddle2onnx writes PP-LCNet (PP-OCRv4 det's backbone) at opset 11: each Conv followed by a
 * scalar scale and shift ("learnable affine"), its hard-swish spelled out as x · Clip(x + 3, 0, 6) / 6, and a scale
 * and shift after that. The front end makes the hard-swish x · HardSigmoid(x), fold-bn folds the Conv's affine into
 * it, the `ort` export reads the other scale and shift as exact codes: ONNX Runtime runs nothing of it in float.
 */
class PaddleStyleJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /**
     * x [N, 1, 28, 28] → conv1 → ·0.8 + 0.1 → hard-swish → ·1.25 − 0.05 → Pad 1 → conv2 (no pads) → Relu →
     * ConvTranspose → + bias → BN → Relu → Pad 0 → GAP → flatten → fc.
     */
    static OnnxModel block() {
        TestModels.Builder b = new TestModels.Builder(61);
        b.conv("conv1", "x", "c1", 1, 8, 3, 1, 1, 1, true);
        b.init("k1", new float[] {0.8f});
        b.init("a1", new float[] {0.1f});
        b.node(Graphs.node("Mul", "affine1_scale", List.of("c1", "k1"), List.of("m1")));
        b.node(Graphs.node("Add", "affine1_shift", List.of("m1", "a1"), List.of("y1")));
        b.init("three", new float[] {3f});
        b.init("six", new float[] {6f});
        b.node(Graphs.node("Add", "hswish_add", List.of("y1", "three"), List.of("p")));
        b.clip("hswish_clip", "p", "r", 0f, 6f);
        b.node(Graphs.node("Mul", "hswish_mul", List.of("y1", "r"), List.of("xr")));
        b.node(Graphs.node("Div", "hswish_div", List.of("xr", "six"), List.of("h")));
        b.init("k2", new float[] {1.25f});
        b.init("a2", new float[] {-0.05f});
        b.node(Graphs.node("Mul", "affine2_scale", List.of("k2", "h"), List.of("m2")));
        b.node(Graphs.node("Add", "affine2_shift", List.of("m2", "a2"), List.of("y2")));
        // conv2's padding as an explicit Pad (as TensorFlow-style exports write it), which the front end puts back
        b.node(Graphs.node("Pad", "pad2", List.of("y2", "pads2"), List.of("y2p"), Map.of("mode", "constant")));
        b.conv("conv2", "y2p", "c2", 8, 8, 3, 1, 1, 0, true).relu("relu2", "c2", "r2");
        // PP-OCR det's head: ConvTranspose → Add (its bias, a [1, C, 1, 1] constant) → BN → Relu
        b.randomInit("deconv.weight", 0.3, 8, 8, 2, 2);
        b.node(Graphs.node("ConvTranspose", "deconv", List.of("r2", "deconv.weight"), List.of("d"),
                Map.of("kernel_shape", new long[] {2, 2}, "strides", new long[] {2, 2})));
        b.randomInit("deconv.bias", 0.2, 1, 8, 1, 1);
        b.node(Graphs.node("Add", "deconv_bias", List.of("d", "deconv.bias"), List.of("db")));
        b.batchNorm("bn", "db", "n", 8).relu("relu3", "n", "r3");
        // a Pad of nothing, as torch.onnx writes before an AvgPool2d
        b.node(Graphs.node("Pad", "pad0", List.of("r3", "pads0"), List.of("r3p"), Map.of("mode", "constant")));
        b.classifier("r3p", 8, 10);
        onnx.Onnx.ModelProto.Builder mp = b.model(11, List.of(Graphs.floatValue("x", -1, 1, 28, 28)),
                List.of(Graphs.floatValue("logits", -1, 10))).toBuilder();
        mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("pads2", new long[] {0, 0, 1, 1, 0, 0, 1, 1}, 8));
        mp.getGraphBuilder().addInitializer(Graphs.int64Tensor("pads0", new long[8], 8));
        return OnnxModel.parse("lcnet.onnx", mp.build().toByteArray(), null);
    }

    @SuppressWarnings("unchecked")
    @Test
    void paddlesAffineBlocksAndHardSwishRunOnIntegersAndTrackFp32() throws Exception {
        Path file = tmp.resolve("lcnet.onnx");
        Files.write(file, block().toByteArray());
        PrintStream out = new PrintStream(new ByteArrayOutputStream());
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                tmp.resolve("o").toString(), "calibration.limit=32", "evaluation.limit=64",
                "pipeline=[fold-bn,calibrate,export,evaluate]", "export.ort-weight-type=uint8"), out);
        Map<String, Object> front = (Map<String, Object>) r.summary().get("front_end");
        assertEquals(List.of("hswish_clip"), front.get("hard_sigmoid_recognised"));
        assertEquals(List.of("pad0"), front.get("pads_removed"));
        assertEquals(List.of("pad2"), front.get("pads_folded"));
        Map<String, Object> passes = (Map<String, Object>) r.summary().get("passes");
        Map<String, Object> fold = (Map<String, Object>) passes.get("fold-bn");
        assertEquals(List.of("conv1 <- [affine1_scale, affine1_shift]", "deconv <- [deconv_bias]"), fold.get("affine"));
        // the Add folded first, the BN then folds into the ConvTranspose rather than becoming a Conv of its own
        assertEquals(List.of("bn -> deconv"), fold.get("batch_norms"));
        assertEquals(List.of(), fold.get("as_depthwise_conv"));
        // the second scale and shift and the gate have rows of their own (the ort profile quantizes their outputs)
        for (String t : List.of("m2", "y2")) {
            org.junit.jupiter.api.Assertions.assertTrue(r.rows().stream().anyMatch(row -> row.tensor().equals(t) && row.role().equals("activation")), t);
        }
        OnnxModel qdq = OnnxModel.load(tmp.resolve("o").resolve("model_qdq.onnx"));
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("optimized.onnx"));
        for (String op : List.of(":Pad", ":Mul", ":Add", ":Div", ":Clip", ":HardSigmoid", ":Conv", ":BatchNormalization",
                ":ConvTranspose", ":Relu", ":DequantizeLinear")) {
            assertEquals(0L, ops.getOrDefault(op, 0L), op + " in " + ops);
        }
        // the ConvTranspose (kernel = stride) became a 1×1 Conv + DepthToSpace: conv1, conv2, deconv on integers
        assertEquals(3L, ops.getOrDefault("com.microsoft:QLinearConv", 0L), ops.toString());
        assertEquals(List.of("deconv"), fold.get("conv_transpose_as_conv"));
        // the hard-swish's gate and product, the scale: QLinearAdd ×2 (gate, shift), QLinearMul ×2 (product, scale)
        assertEquals(2L, ops.getOrDefault("com.microsoft:QLinearAdd", 0L), ops.toString());
        assertEquals(2L, ops.getOrDefault("com.microsoft:QLinearMul", 0L), ops.toString());
        Map<String, Object> eval = (Map<String, Object>) passes.get("evaluate");
        double sqnr = ((Number) eval.get("output_sqnr_db")).doubleValue();
        org.junit.jupiter.api.Assertions.assertTrue(sqnr > 25, "output SQNR " + sqnr + " dB");
    }
}
