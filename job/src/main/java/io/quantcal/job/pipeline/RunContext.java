package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.io.OutputDirectory;
import java.io.PrintStream;
import org.apache.spark.sql.SparkSession;

/**
 * What every pass may use: Spark, the config, file access, the (temporary) output, the console, the run's
 * {@link Progress} (job groups, step descriptions, progress lines) and what the run's report gathers beyond the
 * summary ({@link ReportData}).
 */
public record RunContext(SparkSession spark, QuantcalConfig config, HadoopFiles files, OutputDirectory output,
                         String runId, PrintStream out, Progress progress, ReportData report, CalibrationSamples samples) {

    public RunContext(SparkSession spark, QuantcalConfig config, HadoopFiles files, OutputDirectory output,
                      String runId, PrintStream out) {
        this(spark, config, files, output, runId, out, new Progress(spark.sparkContext(), runId, out), new ReportData(),
                new CalibrationSamples(spark, config));
    }

    /**
     * Runs the following Spark jobs of this thread under the pass's job group ({@code quantcal-<run id>-<pass>},
     * cancellable as one in the Spark UI) and says what they do ("easyquant wave 3/6, weight grid, ...").
     */
    public void describe(String pass, String what) {
        var sc = spark.sparkContext();
        sc.setJobGroup(Progress.group(runId, pass), pass + " (run " + runId + ")", false);
        sc.setJobDescription(what);
    }
}
