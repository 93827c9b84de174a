package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.io.OutputDirectory;
import java.io.PrintStream;
import org.apache.spark.sql.SparkSession;

/** What every pass may use: Spark, the config, file access, the (temporary) output and the console. */
public record RunContext(SparkSession spark, QuantcalConfig config, HadoopFiles files, OutputDirectory output,
                         String runId, PrintStream out) {}
