package io.quantcal.job.bench;

import io.quantcal.job.QuantcalJob;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.bench.ThreadScaling;
import io.quantcal.kernels.runtime.SessionCache;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The whole adaround pass on the bundled example, on local[1] and on local[2] in one run, beside the machine's
 * own two-thread speedup (two cores of this machine do not make 2x). Each run is the pipeline
 * [fold-bn, calibrate, adaround] with resume off; the adaround pass's own wall time comes from run.json's
 * timings. Usage: AdaRoundPassBenchmark [CONFIG] [key=value ...] (overrides, e.g. adaround.iterations=500,
 * adaround.inputs=quantized). A task's kernels use {@code runtime.kernel-threads} ND4J threads (default 1: one
 * Spark task is one core).
 */
public final class AdaRoundPassBenchmark {

    public static void main(String[] args) throws Exception {
        String conf = "conf/example.conf";
        List<String> overrides = new ArrayList<>(List.of("pipeline=[fold-bn,calibrate,adaround]", "adaround.resume=false",
                "output.overwrite=true", "adaround.iterations=1000"));
        for (String a : args) {
            if (a.contains("=")) overrides.add(a);
            else conf = a;
        }
        double machine = ThreadScaling.speedup(2, 400_000_000L);
        System.out.printf("machine: pure compute loop, 2 threads vs 1: speedup %.2fx%n", machine);
        System.out.printf("overrides %s%n", overrides);
        double[] wall = new double[3];
        for (int cores = 1; cores <= 2; cores++) {
            List<String> o = new ArrayList<>(overrides);
            o.add("output.path=out/bench-adaround-pass-local" + cores);
            QuantcalConfig cfg = QuantcalConfig.parse(conf, Files.readString(Path.of(conf)), o);
            SparkSession spark = LocalSpark.start(cores);
            try {
                QuantcalJob.Result r = QuantcalJob.run(spark, cfg, new PrintStream(OutputStream.nullOutputStream()));
                @SuppressWarnings("unchecked")
                Map<String, Object> timings = (Map<String, Object>) r.summary().get("timings_ms");
                @SuppressWarnings("unchecked")
                Map<String, Object> ar = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("adaround");
                @SuppressWarnings("unchecked")
                Map<String, Map<String, Object>> layers = (Map<String, Map<String, Object>>) ar.get("layers");
                long slowest = 0, sum = 0;
                for (Map<String, Object> l : layers.values()) {
                    long ms = ((Number) l.get("ms")).longValue();
                    slowest = Math.max(slowest, ms);
                    sum += ms;
                }
                wall[cores] = ((Number) timings.get("adaround")).doubleValue() / 1000;
                System.out.printf("local[%d]: adaround pass %.2f s (inputs %s, %d layers, %s iterations; optimizer time summed over layers %.2f s, slowest layer %.2f s)%n",
                        cores, wall[cores], ar.get("inputs"), layers.size(), ar.get("iterations"), sum / 1000.0, slowest / 1000.0);
            } finally {
                spark.stop();
                SessionCache.clear();
            }
        }
        System.out.printf("adaround pass wall: local[1] %.2f s, local[2] %.2f s: speedup %.2fx (machine's own 2-thread speedup %.2fx)%n",
                wall[1], wall[2], wall[1] / wall[2], machine);
    }
}
