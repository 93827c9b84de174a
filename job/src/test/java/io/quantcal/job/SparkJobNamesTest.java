package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every Spark job of a run carries its pass's job group and a description of what it does, as the Spark UI shows. */
class SparkJobNamesTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void everyJobHasItsPassGroupAndADescription() throws Exception {
        List<String[]> jobs = Collections.synchronizedList(new ArrayList<>());
        SparkListener listener = new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart e) {
                jobs.add(new String[] {e.properties().getProperty("spark.jobGroup.id"),
                        e.properties().getProperty("spark.job.description"), e.properties().getProperty("mdc.quantcal.run")});
            }
        };
        spark().sparkContext().addSparkListener(listener);
        // the driver's log lines through SLF4J (log4j2 under Spark), with their MDC
        List<String> logged = Collections.synchronizedList(new ArrayList<>());
        var lc = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
        var capture = new org.apache.logging.log4j.core.appender.AbstractAppender("capture", null, null, true,
                org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY) {
            @Override
            public void append(org.apache.logging.log4j.core.LogEvent e) {
                logged.add(e.getContextData().getValue("quantcal.run") + " | " + e.getLoggerName() + " | "
                        + e.getMessage().getFormattedMessage());
            }
        };
        capture.start();
        var loggerConfig = new org.apache.logging.log4j.core.config.LoggerConfig("io.quantcal",
                org.apache.logging.log4j.Level.INFO, false);
        loggerConfig.addAppender(capture, org.apache.logging.log4j.Level.INFO, null);
        lc.getConfiguration().addLogger("io.quantcal", loggerConfig);
        lc.updateLoggers();
        try {
            QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("o").toString(),
                    "run-id=named", "pipeline=[fold-bn,calibrate,easyquant,adaround,bias-correct,export,evaluate]",
                    "quantization.activations.calibrator=percentile", "calibration.limit=24", "evaluation.limit=50",
                    "easyquant.samples=8", "easyquant.segments=6", "easyquant.rounds=1", "adaround.samples=4",
                    "adaround.iterations=10", "adaround.resume=false"), out);
            spark().sparkContext().listenerBus().waitUntilEmpty();
        } finally {
            spark().sparkContext().removeSparkListener(listener);
            lc.getConfiguration().removeLogger("io.quantcal");
            lc.updateLoggers();
        }
        Assertions.assertTrue(logged.contains("named | io.quantcal.job.pipeline.Progress | easyquant: started"), logged.toString());
        Assertions.assertTrue(logged.stream().anyMatch(l -> l.startsWith("named | io.quantcal.job.pipeline.Progress | progress: "
                + "activation statistics: min/max and histograms of ")), logged.toString());
        Assertions.assertTrue(logged.stream().anyMatch(l -> l.startsWith("named | io.quantcal.job.QuantcalJob | run named done in ")),
                logged.toString());
        Assertions.assertTrue(logged.stream().allMatch(l -> l.startsWith("named | ")), "every line carries the run id: " + logged);
        Map<String, Integer> perGroup = new TreeMap<>();
        for (String[] j : jobs) {
            Assertions.assertNotNull(j[0], "a job without a group: " + j[1]);
            Assertions.assertTrue(j[0].startsWith("quantcal-named-"), j[0]);
            Assertions.assertNotNull(j[1], "a job of " + j[0] + " without a description");
            assertEquals("named", j[2], "executors' task logs carry the run id (Spark's mdc.* properties)");
            perGroup.merge(j[0].substring("quantcal-named-".length()), 1, Integer::sum);
        }
        // bias-correct (empirical) takes E[x] from calibrate's pass over the data: it runs no Spark job of its own
        assertEquals(List.of("adaround", "calibrate", "easyquant", "evaluate", "write"),
                new ArrayList<>(perGroup.keySet()), perGroup.toString());
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].startsWith("easyquant wave 1/") && j[1].contains(" candidates")));
        List<String> descriptions = jobs.stream().map(j -> j[1]).distinct().toList();
        // each step of the search says which step of the alternation it is, as the Spark UI shows it
        for (String step : List.of("initial scales", "weight grid", "activation grid")) {
            Assertions.assertTrue(descriptions.stream().anyMatch(d -> d.matches("easyquant wave \\d+/\\d+, " + step
                    + "( \\+ [a-z -]+)*, \\d+ layers, \\d+ candidates")), step + " in " + descriptions);
        }
        Assertions.assertTrue(descriptions.stream().anyMatch(d -> d.matches("easyquant wave 1/\\d+, capture the search data of \\d+ layers")),
                descriptions.toString());
        Assertions.assertTrue(descriptions.contains("evaluate: FP32 and QDQ models over the evaluation data"), descriptions.toString());
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].equals("activation statistics: min/max and histograms of 10 tensors (percentile)"
                + " + E[x] of 5 Conv inputs for bias-correct")),
                jobs.stream().map(j -> j[1]).distinct().toList().toString());
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].startsWith("adaround wave 1/") && j[1].contains("10 iterations each")));
        Assertions.assertNull(spark().sparkContext().getLocalProperty("spark.jobGroup.id"), "the group is cleared after the run");
        Assertions.assertNull(spark().sparkContext().getLocalProperty("spark.job.description"));
        Assertions.assertNull(spark().sparkContext().getLocalProperty("mdc.quantcal.run"));
        // one progress line per step on the console: the step's description, the pass's time so far, an estimate of what
        // is left once some of the pass is done
        List<String> lines = console.toString(java.nio.charset.StandardCharsets.UTF_8).lines()
                .filter(l -> l.startsWith("progress: ")).toList();
        java.util.regex.Pattern form = java.util.regex.Pattern.compile(
                "progress: (.+) \\(step (\\d+), (\\d+\\.\\d s|\\d+ min \\d\\d s) elapsed(, about (\\d+\\.\\d s|\\d+ min \\d\\d s) left)?\\)");
        for (String l : lines) Assertions.assertTrue(form.matcher(l).matches(), l);
        for (String d : descriptions) {
            if (!d.startsWith("write")) Assertions.assertTrue(lines.stream().anyMatch(l -> l.startsWith("progress: " + d + " (step ")), d);
        }
        // calibrate (percentile) takes one pass over the data: one step, nothing left to estimate when it starts
        assertEquals(List.of("progress: activation statistics: min/max and histograms of 10 tensors (percentile)"
                + " + E[x] of 5 Conv inputs for bias-correct (step 1, "),
                lines.stream().filter(l -> l.startsWith("progress: activation statistics"))
                        .map(l -> l.substring(0, l.indexOf("(step 1, ") + "(step 1, ".length())).toList(), lines.toString());
        Assertions.assertTrue(lines.stream().anyMatch(l -> l.matches("progress: easyquant wave \\d+/\\d+, weight grid.*")
                && l.contains(" left)")), lines.toString());
        Assertions.assertTrue(lines.stream().anyMatch(l -> l.startsWith("progress: adaround: choose") && l.contains("(step 1, ")),
                lines.toString());
    }
}
