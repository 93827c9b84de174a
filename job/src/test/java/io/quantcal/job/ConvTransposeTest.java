package io.quantcal.job;

import static io.quantcal.job.ParquetInputsTest.F;
import static io.quantcal.job.ParquetInputsTest.array;
import static io.quantcal.job.ParquetInputsTest.floats;
import static io.quantcal.job.ParquetInputsTest.gaussian;
import static io.quantcal.job.ParquetInputsTest.ramp;
import static io.quantcal.job.ParquetInputsTest.runJson;
import static io.quantcal.job.ParquetInputsTest.value;

import com.fasterxml.jackson.databind.JsonNode;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A decoder's upsampling ConvTranspose (weight [C_in, C_out, k, k]) followed by BatchNormalization and Relu, as
 * segmentation and text-detection models (PaddleOCR det) write it: BN folded along the weight's axis 1, weights
 * quantized per output channel on axis 1 (ONNX Runtime's quantizer's axis for ConvTranspose), exported with
 * Q/DQ; searched by EasyQuant and rounded by AdaRound as the Conv over its zero-inserted input that computes it,
 * with the codes back in the ConvTranspose's layout; and the QDQ model tracks FP32.
 */
class ConvTransposeTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /**
     * x [N,3,6,6] -> Conv(8, 3x3, pad 1) -> Relu -> ConvTranspose(8->4, k 3, s 2, pad 1, output_padding 1) -> BN -> Relu
     * -> Conv(2, 1x1) -> y [N,2,12,12]. (A kernel equal to its stride would become a 1×1 Conv: ConvTransposeAsDepthToSpace.)
     */
    Path decoder() throws Exception {
        float[] gamma = {1.2f, 0.8f, 1.0f, 0.5f}, beta = {0.1f, -0.2f, 0.05f, 0f}, mean = {0.3f, -0.1f, 0.2f, 0f},
                var = {1.5f, 0.7f, 1.1f, 2.0f};
        Path p = tmp.resolve("decoder.onnx");
        Files.write(p, Graphs.model(13, List.of(
                        Graphs.node("Conv", "enc", List.of("x", "w1", "b1"), List.of("h1"), Map.of("pads", new long[] {1, 1, 1, 1})),
                        Graphs.node("Relu", "r1", List.of("h1"), List.of("a1")),
                        Graphs.node("ConvTranspose", "up", List.of("a1", "wt", "bt"), List.of("u"),
                                Map.of("strides", new long[] {2, 2}, "kernel_shape", new long[] {3, 3}, "pads",
                                        new long[] {1, 1, 1, 1}, "output_padding", new long[] {1, 1})),
                        Graphs.node("BatchNormalization", "bn", List.of("u", "g", "be", "m", "v"), List.of("ub")),
                        Graphs.node("Relu", "r2", List.of("ub"), List.of("a2")),
                        Graphs.node("Conv", "head", List.of("a2", "w3", "b3"), List.of("y"))),
                List.of(Graphs.floatTensor("w1", ramp(8 * 3 * 9, 0.09f, 0.01f), 8, 3, 3, 3), Graphs.floatTensor("b1", ramp(8, 0.1f, 0.05f), 8),
                        Graphs.floatTensor("wt", ramp(8 * 4 * 9, 0.12f, 0.02f), 8, 4, 3, 3), Graphs.floatTensor("bt", ramp(4, 0.1f, 0), 4),
                        Graphs.floatTensor("g", gamma, 4), Graphs.floatTensor("be", beta, 4), Graphs.floatTensor("m", mean, 4),
                        Graphs.floatTensor("v", var, 4),
                        Graphs.floatTensor("w3", ramp(2 * 4, 0.3f, 0), 2, 4, 1, 1), Graphs.floatTensor("b3", ramp(2, 0.1f, 0), 2)),
                List.of(value("x", F, "batch", 3, 6, 6)), List.of(value("y", F, "batch", 2, 12, 12))).toByteArray());
        return p;
    }

    QuantcalJob.Result run(String pipeline, String... more) throws Exception {
        Path model = decoder();
        StructType schema = new StructType().add("x", array(DataTypes.FloatType));
        Random rnd = new Random(5);
        List<Row> rows = new ArrayList<>();
        for (int k = 0; k < 24; k++) rows.add(RowFactory.create(floats(gaussian(rnd, 3 * 36, 1.0))));
        Path data = tmp.resolve("x.parquet");
        spark().createDataFrame(rows, schema).repartition(2).write().parquet(data.toString());
        List<String> keys = new ArrayList<>(List.of("calibration.format=parquet", "calibration.parquet.column=x",
                "calibration.parquet.label-column=", "evaluation.format=parquet", "evaluation.path=" + data,
                "input-shapes.x=[-1, 3, 6, 6]", "pipeline=" + pipeline));
        keys.addAll(List.of(more));
        return QuantcalJob.run(spark(), JobFixtures.config(model.toString(), data.toString(), tmp.resolve("out").toString(),
                keys.toArray(String[]::new)), out);
    }

    @Test
    void convTransposeIsFoldedCalibratedPerOutputChannelAndExported() throws Exception {
        QuantcalJob.Result r = run("[fold-bn, calibrate, export, evaluate]");
        String output = tmp.resolve("out").toString();
        JsonNode run = runJson(r);
        Assertions.assertEquals(3, run.get("coverage").get("quantized").asInt(), run.get("coverage").toString());

        // weight rows: one per output channel on axis 1, from the calibrator, of the BN-folded weight
        List<ScaleRow> w = r.rows().stream().filter(x -> x.node().equals("up") && x.role().equals("weight"))
                .sorted(Comparator.comparingInt(ScaleRow::channel)).toList();
        Assertions.assertEquals(4, w.size());
        float[] wt = ramp(8 * 4 * 9, 0.12f, 0.02f);
        float[] gamma = {1.2f, 0.8f, 1.0f, 0.5f}, var = {1.5f, 0.7f, 1.1f, 2.0f};
        for (ScaleRow row : w) {
            int co = row.channel();
            Assertions.assertEquals(1, row.axis());
            Assertions.assertEquals("minmax", row.method());
            double k = gamma[co] / Math.sqrt(var[co] + 1e-5), maxAbs = 0;
            for (int ci = 0; ci < 8; ci++) for (int t = 0; t < 9; t++) maxAbs = Math.max(maxAbs, Math.abs(wt[(ci * 4 + co) * 9 + t] * k));
            // symmetric int8 [-127, 127]: the step is max|W'_c| / 127, W'_c the folded weights of output channel c
            Assertions.assertEquals(maxAbs / 127, row.scale(), 1e-6 * maxAbs, "channel " + co);
        }

        // the exported weight is DequantizeLinear(axis 1) of int8 codes, and the QDQ model tracks the FP32 model
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        NodeProto ct = qdq.nodes().stream().filter(n -> n.getOpType().equals("ConvTranspose")).findFirst().orElseThrow();
        NodeProto dq = qdq.producer(ct.getInput(1));
        Assertions.assertEquals("DequantizeLinear", dq.getOpType());
        Assertions.assertEquals(1, dq.getAttributeList().stream().filter(a -> a.getName().equals("axis")).findFirst()
                .orElseThrow().getI());
        Assertions.assertEquals(JobFixtures.ORT_WEIGHT_TYPE.equals("uint8") ? TensorProto.DataType.UINT8_VALUE
                : TensorProto.DataType.INT8_VALUE, qdq.initializer(dq.getInput(0)).getDataType());
        Assertions.assertFalse(qdq.nodes().stream().anyMatch(n -> n.getOpType().equals("BatchNormalization")), "BN folded");
        try (ModelRunner q = ModelRunner.open(qdq, RunnerOptions.singleThreaded())) {
            float[] y = q.run(FloatTensor.of("x", gaussian(new Random(1), 2 * 3 * 36, 1.0), 2, 3, 6, 6)).get("y").data();
            Assertions.assertEquals(2 * 2 * 144, y.length);
        }
        JsonNode ev = run.get("passes").get("evaluate");
        Assertions.assertTrue(ev.get("output_sqnr_db").asDouble() > 30, "output SQNR " + ev.get("output_sqnr_db"));
        Assertions.assertEquals(4, qdq.initializer(dq.getInput(0)).getDimsCount());
    }

    /**
     * EasyQuant searches the ConvTranspose's scales and AdaRound rounds its weight: nothing is kept at its calibrated
     * parameters, the searches do not lose against their starting point, and the exported int8 weight is AdaRound's
     * codes in the ConvTranspose's layout [C_in, C_out, k, k], each the floor or ceiling of w / s of its output channel
     * (axis 1) of the BN-folded weight.
     */
    @Test
    void easyQuantAndAdaRoundSearchTheConvTranspose() throws Exception {
        QuantcalJob.Result r = run("[fold-bn, calibrate, easyquant, adaround, export, evaluate]", "easyquant.samples=16",
                "easyquant.segments=10", "adaround.samples=16", "adaround.iterations=200");
        JsonNode run = runJson(r);
        JsonNode eq = run.get("passes").get("easyquant"), ar = run.get("passes").get("adaround");
        Assertions.assertEquals("[]", eq.get("kept_as_calibrated").toString());
        Assertions.assertEquals("[]", ar.get("kept_as_calibrated").toString());
        JsonNode up = eq.get("layers").get("up");
        Assertions.assertNotNull(up, eq.toString());
        Assertions.assertTrue(up.get("final_cosine").asDouble() >= up.get("initial_cosine").asDouble() - 1e-9, up.toString());
        Assertions.assertEquals(4, up.get("weight_scales").size());
        JsonNode upAr = ar.get("layers").get("up");
        Assertions.assertTrue(upAr.get("mse_adaround").asDouble() <= upAr.get("mse_round_to_nearest").asDouble(), upAr.toString());
        Assertions.assertEquals(16 * 144, upAr.get("columns").asInt()); // 16 samples of 12·12 output positions

        List<ScaleRow> w = r.rows().stream().filter(x -> x.node().equals("up") && x.role().equals("weight"))
                .sorted(Comparator.comparingInt(ScaleRow::channel)).toList();
        Assertions.assertEquals(4, w.size());
        OnnxModel qdq = OnnxModel.load(Path.of(tmp.resolve("out").toString(), "model_qdq.onnx"));
        NodeProto ct = qdq.nodes().stream().filter(n -> n.getOpType().equals("ConvTranspose")).findFirst().orElseThrow();
        NodeProto dq = qdq.producer(ct.getInput(1));
        int[] codes = JobFixtures.weightCodes(qdq, dq.getInput(0));
        float[] wt = ramp(8 * 4 * 9, 0.12f, 0.02f);
        float[] gamma = {1.2f, 0.8f, 1.0f, 0.5f}, var = {1.5f, 0.7f, 1.1f, 2.0f};
        int moved = 0;
        for (int i = 0; i < codes.length; i++) {
            int co = (i / 9) % 4;
            Assertions.assertEquals(1, w.get(co).axis());
            double v = wt[i] * gamma[co] / Math.sqrt(var[co] + 1e-5) / w.get(co).scale();
            Assertions.assertTrue(codes[i] == Math.floor(v) || codes[i] == Math.ceil(v), "code " + codes[i] + " for w/s " + v);
            if (codes[i] != Math.rint(v)) moved++;
        }
        Assertions.assertTrue(ev(run) > 30, "output SQNR " + ev(run));
        out.println("ConvTranspose codes rounded away from nearest by AdaRound: " + moved + " of " + codes.length);
    }

    static double ev(JsonNode run) {
        return run.get("passes").get("evaluate").get("output_sqnr_db").asDouble();
    }
}
