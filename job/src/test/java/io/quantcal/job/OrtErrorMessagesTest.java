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
