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
 * A whole layer-reconstruction pass (adaround or learn) on the bundled example, on local[1] and on local[2] in one
 * run, beside the machine's own two-thread speedup (two cores of this machine do not make 2x). Each run is the
 * pipeline [fold-bn, calibrate, PASS] with resume off and 1000 iterations; the pass's own wall time comes from
 * run.json's timings. Usage: ReconstructionPassBenchmark [pass=adaround|learn] [CONFIG] [key=value ...] (overrides,
 * e.g. adaround.iterations=500, learn.inputs=fp). A task's kernels use {@code runtime.kernel-threads} ND4J threads
 * (default 1: one Spark task is one core).
 */
public final class ReconstructionPassBenchmark {

    public static void main(String[] args) throws Exception {
        String conf = "conf/example.conf";
        String pass = "adaround";
        List<String> given = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("pass=")) pass = a.substring("pass=".length());
            else if (a.contains("=")) given.add(a);
            else conf = a;
        }
        if (!pass.equals("adaround") && !pass.equals("learn")) {
            throw new IllegalArgumentException("pass=" + pass + ": expected adaround or learn");
        }
        List<String> overrides = new ArrayList<>(List.of("pipeline=[fold-bn,calibrate," + pass + "]", pass + ".resume=false",
                "output.overwrite=true", pass + ".iterations=1000"));
        overrides.addAll(given);
        double machine = ThreadScaling.speedup(2, 400_000_000L);
        System.out.printf("machine: pure compute loop, 2 threads vs 1: speedup %.2fx%n", machine);
        System.out.printf("overrides %s%n", overrides);
        double[] wall = new double[3];
        for (int cores = 1; cores <= 2; cores++) {
            List<String> o = new ArrayList<>(overrides);
            o.add("output.path=out/bench-" + pass + "-pass-local" + cores);
            QuantcalConfig cfg = QuantcalConfig.parse(conf, Files.readString(Path.of(conf)), o);
            SparkSession spark = LocalSpark.start(cores);
            try {
                QuantcalJob.Result r = QuantcalJob.run(spark, cfg, new PrintStream(OutputStream.nullOutputStream()));
                @SuppressWarnings("unchecked")
                Map<String, Object> timings = (Map<String, Object>) r.summary().get("timings_ms");
                @SuppressWarnings("unchecked")
                Map<String, Object> ar = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get(pass);
                @SuppressWarnings("unchecked")
                Map<String, Map<String, Object>> layers = (Map<String, Map<String, Object>>) ar.get("layers");
                long slowest = 0, sum = 0;
                for (Map<String, Object> l : layers.values()) {
                    long ms = ((Number) l.get("ms")).longValue();
                    slowest = Math.max(slowest, ms);
                    sum += ms;
                }
                wall[cores] = ((Number) timings.get(pass)).doubleValue() / 1000;
                System.out.printf("local[%d]: %s pass %.2f s (inputs %s, %d layers, %s iterations; optimizer time summed over layers %.2f s, slowest layer %.2f s)%n",
                        cores, pass, wall[cores], ar.get("inputs"), layers.size(), ar.get("iterations"), sum / 1000.0, slowest / 1000.0);
            } finally {
                spark.stop();
                SessionCache.clear();
            }
        }
        System.out.printf("%s pass wall: local[1] %.2f s, local[2] %.2f s: speedup %.2fx (machine's own 2-thread speedup %.2fx)%n",
                pass, wall[1], wall[2], wall[1] / wall[2], machine);
    }
}
