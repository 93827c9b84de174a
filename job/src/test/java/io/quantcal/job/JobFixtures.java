package io.quantcal.job;

import io.quantcal.job.config.QuantcalConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Paths of the bundled example and a config builder for job tests. */
final class JobFixtures {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path EXAMPLE = ROOT.resolve("examples/fashion-mnist");
    static final String RESNET = EXAMPLE.resolve("models/resnet_small.onnx").toString();
    static final String CALIB = EXAMPLE.resolve("calib").toString();
    static final String EVAL = EXAMPLE.resolve("eval").toString();

    private JobFixtures() {}

    /**
     * The int8 weights' container the tests' QDQ models use: int8 (the default) where ONNX Runtime computes u8·s8
     * exactly, uint8 (the same grid) on a CPU where its u8·s8 kernels saturate (AVX2 without VNNI): the tests assert
     * what the scale table gives, which is what each CPU computes with that choice ({@code QdqExporterTest} checks both).
     */
    static final String ORT_WEIGHT_TYPE = io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates() ? "uint8" : "int8";

    static String baseConfig(String model, String calib, String output) {
        return """
                quantcal {
                  run-id = "test-run"
                  model = "%s"
                  calibration { path = "%s", limit = 200, batch-size = 50 }
                  evaluation { path = "%s", limit = 1000, speed = false }
                  export.ort-weight-type = %s
                  output.path = "%s"
                }
                """.formatted(model, calib, EVAL, ORT_WEIGHT_TYPE, output);
    }

    static QuantcalConfig config(String model, String calib, String output, String... overrides) {
        return QuantcalConfig.parse("test.conf", baseConfig(model, calib, output), List.of(overrides));
    }

    /**
     * The int8 weight codes of a QDQ model's weight initializer: as stored, or less 128 where the model stores them as
     * uint8 ({@link #ORT_WEIGHT_TYPE}).
     */
    static int[] weightCodes(io.quantcal.kernels.onnx.OnnxModel qdq, String initializer) {
        int[] codes = qdq.initializerInts(initializer);
        if (qdq.initializer(initializer).getDataType() == onnx.Onnx.TensorProto.DataType.UINT8_VALUE) {
            for (int i = 0; i < codes.length; i++) codes[i] -= 128;
        }
        return unpadded(qdq, initializer, codes);
    }

    /**
     * The codes of a stem weight without the zero-valued channels the ort profile appends (StemPadding): the Conv
     * that reads the weight's DequantizeLinear reads its input's DequantizeLinear from a Pad whose pads give their count.
     */
    static int[] unpadded(io.quantcal.kernels.onnx.OnnxModel qdq, String initializer, int[] codes) {
        onnx.Onnx.NodeProto dq = qdq.consumers(initializer).get(0);
        onnx.Onnx.NodeProto conv = qdq.consumers(dq.getOutput(0)).get(0);
        onnx.Onnx.NodeProto xdq = qdq.producer(conv.getInput(0));
        onnx.Onnx.NodeProto pad = xdq == null ? null : qdq.producer(xdq.getInput(0));
        if (pad == null || !pad.getOpType().equals("Pad")) return codes;
        long[] shape = qdq.shape(initializer);
        int[] pads = qdq.initializerInts(pad.getInput(1));
        int in = (int) shape[1] - pads[shape.length + 1];
        int inner = codes.length / (int) (shape[0] * shape[1]);
        int[] out = new int[(int) shape[0] * in * inner];
        for (int o = 0; o < shape[0]; o++) {
            System.arraycopy(codes, o * (int) shape[1] * inner, out, o * in * inner, in * inner);
        }
        return out;
    }

    /**
     * Runs [fold-bn, calibrate, export, evaluate] on {@code model} with 64 calibration and 64 evaluation images of the
     * bundled example (and {@code overrides}), writing {@code output}; the console's text.
     */
    static String runOnExample(org.apache.spark.sql.SparkSession spark, Path model, String output, String... overrides) {
        java.io.ByteArrayOutputStream console = new java.io.ByteArrayOutputStream();
        QuantcalJob.run(spark, config(model.toString(), CALIB, output, concat(new String[] {"calibration.limit=64",
                "evaluation.limit=64", "pipeline=[fold-bn,calibrate,export,evaluate]"}, overrides)),
                new java.io.PrintStream(console, true, java.nio.charset.StandardCharsets.UTF_8));
        return console.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    static String[] concat(String[] a, String... b) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.addAll(Arrays.asList(b));
        return l.toArray(new String[0]);
    }

    /** Two runs' scale tables hold the same tensors, in the same order, with the same scales and zero points. */
    static void assertSameScaleTable(org.apache.spark.sql.SparkSession spark, String output, String expectedOutput) {
        java.util.List<io.quantcal.job.table.ScaleRow> a = io.quantcal.job.table.ScaleTable.read(spark, output + "/" + QuantcalJob.SCALE_TABLE);
        java.util.List<io.quantcal.job.table.ScaleRow> b = io.quantcal.job.table.ScaleTable.read(spark, expectedOutput + "/" + QuantcalJob.SCALE_TABLE);
        org.junit.jupiter.api.Assertions.assertEquals(b.size(), a.size());
        for (int i = 0; i < a.size(); i++) {
            org.junit.jupiter.api.Assertions.assertEquals(b.get(i).tensor(), a.get(i).tensor());
            org.junit.jupiter.api.Assertions.assertEquals(b.get(i).scale(), a.get(i).scale(), b.get(i).tensor());
            org.junit.jupiter.api.Assertions.assertEquals(b.get(i).zeroPoint(), a.get(i).zeroPoint(), b.get(i).tensor());
        }
    }
}
