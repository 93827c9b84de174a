package io.quantcal.job;

import io.quantcal.job.config.QuantcalConfig;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * A child JVM for {@link MemoryErrorsTest}: a session made the way a run makes it ({@link Spark#forRun}), a Spark task
 * that throws OutOfMemoryError outside any pass's guard (as Spark's own code may), then what the command line does
 * with the failure. Prints the line and exits with the command line's code.
 */
public final class OutOfMemoryInTaskMain {

    private OutOfMemoryInTaskMain() {}

    public static void main(String[] args) throws Exception {
        QuantcalConfig cfg = JobFixtures.config(JobFixtures.RESNET, JobFixtures.CALIB, args[0], "spark.master=local[2]");
        SparkSession spark = Spark.forRun(cfg);
        int code;
        try {
            new JavaSparkContext(spark.sparkContext()).parallelize(List.of(1, 2, 3, 4), 2).map(i -> {
                if (i == 3) throw new OutOfMemoryError("Java heap space");
                return i;
            }).collect();
            code = 0;
        } catch (Throwable e) {
            code = Cli.fail(System.err, e);
        }
        spark.stop();
        System.exit(code);
    }
}
