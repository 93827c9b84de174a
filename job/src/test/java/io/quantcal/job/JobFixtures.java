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

    static String baseConfig(String model, String calib, String output) {
        return """
                quantcal {
                  run-id = "test-run"
                  model = "%s"
                  calibration { path = "%s", limit = 200, batch-size = 50 }
                  evaluation { path = "%s", limit = 1000 }
                  output.path = "%s"
                }
                """.formatted(model, calib, EVAL, output);
    }

    static QuantcalConfig config(String model, String calib, String output, String... overrides) {
        return QuantcalConfig.parse("test.conf", baseConfig(model, calib, output), List.of(overrides));
    }

    static String[] concat(String[] a, String... b) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.addAll(Arrays.asList(b));
        return l.toArray(new String[0]);
    }
}
