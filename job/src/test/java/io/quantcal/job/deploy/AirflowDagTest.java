package io.quantcal.job.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.job.config.QuantcalConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The example Airflow DAG passes exactly what the command line takes: read from the DAG file, its bash_command (the
 * Python string literals concatenated, Jinja templates given values) is deploy/quantcal-submit, spark-submit options,
 * then {@code run CONFIG key=value ...} whose overrides the config accepts.
 */
class AirflowDagTest {

    static final Path DAG = Path.of("..", "deploy", "airflow", "quantcal_dag.py");

    @Test
    void theDagsCommandIsOneTheCliAccepts() throws Exception {
        String py = Files.readString(DAG);
        Matcher call = Pattern.compile("bash_command=\\((.*?)\\),", Pattern.DOTALL).matcher(py);
        assertTrue(call.find(), "bash_command=( ... ) in " + DAG);
        StringBuilder command = new StringBuilder();
        Matcher literal = Pattern.compile("^\\s*\"((?:[^\"\\\\]|\\\\.)*)\"", Pattern.MULTILINE).matcher(call.group(1));
        while (literal.find()) command.append(literal.group(1));
        String rendered = command.toString()
                .replace("{{ var.value.quantcal_home }}", "/opt/quantcal")
                .replace("{{ var.value.quantcal_config }}", "hdfs://nn:8020/q/model.conf")
                .replace("{{ var.value.quantcal_output_root.rstrip('/') }}", "hdfs://nn:8020/q/out")
                .replace("{{ ds_nodash }}", "20260102");
        assertTrue(!rendered.contains("{{"), "every template given a value: " + rendered);
        List<String> args = new ArrayList<>(Arrays.asList(rendered.trim().split("\\s+")));
        assertEquals("/opt/quantcal/deploy/quantcal-submit", args.remove(0));
        // deploy/quantcal-submit hands the options before the command to spark-submit: each --option with its value
        while (args.get(0).startsWith("--")) {
            String option = args.remove(0);
            assertTrue(option.matches("--[a-z-]+"), option);
            assertTrue(!args.get(0).startsWith("--") && !args.get(0).equals("run"), option + " takes a value");
            args.remove(0);
        }
        assertEquals("run", args.remove(0));
        assertEquals("hdfs://nn:8020/q/model.conf", args.remove(0));
        // the rest are overrides of the config, as the CLI parses them
        QuantcalConfig cfg = QuantcalConfig.parse("model.conf", """
                quantcal { model = "m.onnx", calibration.path = "images/", output.path = "elsewhere" }
                """, args);
        assertEquals("quantcal-20260102", cfg.runId());
        assertEquals("hdfs://nn:8020/q/out/20260102", cfg.outputPath());
        assertTrue(cfg.overwrite());
    }
}
