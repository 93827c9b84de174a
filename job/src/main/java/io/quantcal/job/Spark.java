package io.quantcal.job;

import io.quantcal.job.config.QuantcalConfig;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/** Spark sessions: the cluster's when started by spark-submit, an embedded local one otherwise. */
public final class Spark {

    private Spark() {}

    /** The session for a run; {@code quantcal.spark.master} applies only when spark-submit set no master. */
    public static SparkSession forRun(QuantcalConfig cfg) {
        SparkConf conf = new SparkConf().setAppName(cfg.appName());
        if (!conf.contains("spark.master")) {
            conf.setMaster(cfg.sparkMaster());
            localDefaults(conf);
        }
        cfg.sparkConf().forEach(conf::set);
        return SparkSession.builder().config(conf).getOrCreate();
    }

    /** A small embedded session, for reading tables from the command line. */
    public static SparkSession local(String appName) {
        SparkConf conf = new SparkConf().setAppName(appName);
        if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
            localDefaults(conf);
        }
        return SparkSession.builder().config(conf).getOrCreate();
    }

    /** True when this JVM already has a Spark session (a test, a notebook, spark-shell): then we must not stop it. */
    public static boolean sessionExists() {
        return SparkSession.getDefaultSession().isDefined() || SparkSession.getActiveSession().isDefined();
    }

    private static void localDefaults(SparkConf conf) {
        conf.setIfMissing("spark.ui.enabled", "false");
        conf.setIfMissing("spark.ui.showConsoleProgress", "false");
        conf.setIfMissing("spark.sql.shuffle.partitions", "4");
        conf.setIfMissing("spark.driver.host", "127.0.0.1");
        conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        // In local mode the executor is this JVM: a fatal error in a task (an OutOfMemoryError raised inside Spark's
        // own code, where no pass can catch it) would make Spark's handler exit with 52. Depth 0 lets the task fail
        // like any other; the job fails and the command line reports "ran out of memory" with exit code 1 (the
        // memory the failed task held is unreachable once its stack unwinds).
        conf.setIfMissing("spark.executor.killOnFatalError.depth", "0");
    }
}
