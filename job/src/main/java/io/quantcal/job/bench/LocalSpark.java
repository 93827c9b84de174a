package io.quantcal.job.bench;

import org.apache.spark.sql.SparkSession;

/** The benchmarks' embedded Spark: local[cores], no UI, loopback only, warnings only. */
final class LocalSpark {

    private LocalSpark() {}

    static SparkSession start(int cores) {
        return start("local[" + cores + "]");
    }

    static SparkSession start(String master) {
        SparkSession spark = SparkSession.builder().master(master).appName("quantcal-bench")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        return spark;
    }
}
