package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;

import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx.ModelProto;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An error ONNX Runtime raises inside a Spark task reaches the command line as one line naming the model file (not
 * the SHA-256 the executors key their sessions by) and the node ONNX Runtime says failed.
 */
class OrtErrorMessagesTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /**
     * A model ONNX Runtime refuses to load (an exporter's Sqrt of an int64 channel count, as Debian's torch writes
     * torchvision's RAFT): one line naming the file and ONNX Runtime's reason, from the driver before any Spark job
     * (it failed in both tasks at once before, with Spark's shutdown traces around the line).
     */
    @Test
    void aModelOnnxRuntimeCannotLoadStopsBeforeSpark() throws Exception {
        ModelProto proto = Graphs.model(13,
                List.of(Graphs.node("Conv", "conv", List.of("input", "w"), List.of("y"),
                                Map.of("kernel_shape", new long[] {3, 3}, "pads", new long[] {1, 1, 1, 1})),
                        Graphs.node("Shape", "shape", List.of("y"), List.of("dims")),
                        Graphs.node("Gather", "channels", List.of("dims", "one"), List.of("c"), Map.of("axis", 0L)),
                        Graphs.node("Sqrt", "sqrt_int", List.of("c"), List.of("root")),
                        Graphs.node("Cast", "to_float", List.of("root"), List.of("rootf"), Map.of("to", 1L)),
                        Graphs.node("Div", "scale", List.of("y", "rootf"), List.of("z"))),
                List.of(Graphs.floatTensor("w", new float[4 * 9], 4, 1, 3, 3), Graphs.int64Tensor("one", new long[] {1})),
                List.of(Graphs.floatValue("input", -1, 1, 28, 28)), List.of(Graphs.floatValue("z", -1, 4, 28, 28)));
        Path model = tmp.resolve("int_sqrt.onnx");
        Files.write(model, proto.toByteArray());
        Path conf = tmp.resolve("s.conf");
        Files.writeString(conf, JobFixtures.baseConfig(model.toString(), CALIB, tmp.resolve("out-s").toString()));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(new String[] {"run", conf.toString(), "pipeline=[calibrate]", "calibration.limit=16"},
                new PrintStream(console, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8).strip();
        Assertions.assertEquals(1, code, e);
        Assertions.assertEquals(1, e.lines().count(), "one-line reason: " + e);
        Assertions.assertTrue(e.startsWith("quantcal: error: file:" + model + ": ONNX Runtime cannot load the model"), e);
        Assertions.assertTrue(e.contains("Sqrt"), e);
        Assertions.assertFalse(console.toString(StandardCharsets.UTF_8).contains("activation statistics"),
                "calibrate did not start: " + console);
        Assertions.assertFalse(Files.exists(tmp.resolve("out-s")));
    }

    @Test
    void aConvThatOnnxRuntimeRejectsAtRunTimeIsNamedWithTheModelFile() throws Exception {
        // a Conv whose weight wants 3 input channels, fed the example's 1-channel images; the input's shape is
        // left open, so quantcal's own checks and ONNX Runtime's load pass and the kernel fails in the task
        ModelProto proto = Graphs.model(13,
                List.of(Graphs.node("Conv", "conv_bad", List.of("input", "w"), List.of("y"),
                        Map.of("kernel_shape", new long[] {3, 3}))),
                List.of(Graphs.floatTensor("w", new float[4 * 3 * 3 * 3], 4, 3, 3, 3)),
                List.of(Graphs.floatValue("input", -1, -1, -1, -1)), List.of(Graphs.floatValue("y", -1, 4, -1, -1)));
        Path model = tmp.resolve("bad_conv.onnx");
        Files.write(model, proto.toByteArray());
        String sha = OnnxModel.parse(model.toString(), proto.toByteArray(), ExternalDataResolver.none()).sha256();

        Path conf = tmp.resolve("c.conf");
        Files.writeString(conf, JobFixtures.baseConfig(model.toString(), CALIB, tmp.resolve("out").toString()));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(new String[] {"run", conf.toString(), "pipeline=[calibrate]", "calibration.limit=16"}, out,
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8).strip();
        Assertions.assertEquals(1, code, e);
        Assertions.assertEquals(1, e.lines().count(), "one-line reason: " + e);
        Assertions.assertTrue(e.startsWith("quantcal: error: file:" + model + ": ONNX Runtime run failed at node conv_bad (Conv"), e);
        Assertions.assertTrue(e.contains("Input channels C is not equal to kernel channels * group"), e);
        Assertions.assertFalse(e.contains(sha) || e.contains(sha.substring(0, 12)), "names the file, not the hash: " + e);
        Assertions.assertFalse(Files.exists(tmp.resolve("out")));
    }
}
