package io.quantcal.job.bench;

import io.quantcal.job.QuantcalJob;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.bench.ThreadScaling;
import io.quantcal.kernels.easyquant.EasyQuantBenchmark;
import io.quantcal.kernels.runtime.KernelThreads;
import io.quantcal.kernels.runtime.SessionCache;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The whole easyquant pass (capture and search) on local[1] and local[2], side by side in one run, beside the
 * machine's own two-thread speedup; the best of {@code reps} runs each (after a warm-up run); with the candidate gemms'
 * work (GFLOP) and their speed per task against ND4J's one-thread matmul peak measured in the same run. Usage:
 * EasyQuantPassBenchmark [CONFIG] [reps=3] [key=value ...] (overrides, e.g. easyquant.mode=sequential).
 */
public final class EasyQuantPassBenchmark {

    public static void main(String[] args) throws Exception {
        String conf = "conf/example.conf";
        int reps = 3;
        List<String> overrides = new ArrayList<>(List.of("pipeline=[fold-bn,calibrate,easyquant]", "output.overwrite=true",
                "calibration.partitions=2"));
        for (String a : args) {
            if (a.startsWith("reps=")) reps = Integer.parseInt(a.substring(5));
            else if (a.contains("=")) overrides.add(a);
            else conf = a;
        }
        Path out = BenchOutput.create("easyquant");
        overrides.add("output.path=" + out.resolve("run").toUri());
        try {
            run(conf, overrides, reps);
        } finally {
            BenchOutput.remove(out);
        }
    }

    private static void run(String conf, List<String> overrides, int reps) throws Exception {
        QuantcalConfig cfg = QuantcalConfig.parse(conf, Files.readString(Path.of(conf)), overrides);
        QuantcalConfig.EasyQuant eq = cfg.easyquant();
        double machine = ThreadScaling.speedup(2, 400_000_000L);
        System.out.printf("machine: pure compute loop, 2 threads vs 1: speedup %.2fx%n", machine);
        // a search task runs its gemms on one thread (ND4J limited to cores / tasks): its peak is ND4J's on one thread
        KernelThreads.limit(1);
        double peak = Math.max(EasyQuantBenchmark.peak(), EasyQuantBenchmark.peak()); // the first warms ND4J up
        System.out.printf("ND4J matmul peak on one thread (float32, best of 1024^3 and 2048^3, medians): %.1f GFLOP/s%n", peak);
        double gemmMachine = EasyQuantBenchmark.gemmSpeedup(2);
        System.out.printf("machine: one-thread float32 gemms (1024^3), 2 threads at once vs 1: speedup %.2fx%n", gemmMachine);
        System.out.printf("easyquant %s on %s: %d samples, %d segments, %d rounds, W%dA%d, %d calibration partitions, best of %d%n",
                eq.mode(), cfg.model(), eq.samples(), eq.segments(), eq.rounds(), cfg.weights().bits(), cfg.activations().bits(),
                2, reps);
        System.out.printf("%-9s %10s %10s %10s %12s %12s %10s %10s %12s %8s%n", "master", "pass s", "capture s", "search s",
                "candidates", "cand/s", "jobs", "GFLOP", "GF/s/task", "of peak");
        double[] pass = new double[3];
        double[] search = new double[3];
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        for (int cores = 1; cores <= 2; cores++) {
            SparkSession spark = LocalSpark.start(cores);
            QuantcalJob.run(spark, cfg, quiet); // warm-up: JIT, sessions
            double[] p = new double[reps], c = new double[reps], s = new double[reps];
            long candidates = 0, jobs = 0;
            double gflop = 0, perTask = 0;
            for (int i = 0; i < reps; i++) {
                Map<String, Object> e = easyquant(QuantcalJob.run(spark, cfg, quiet));
                c[i] = ((Number) e.get("capture_ms")).doubleValue() / 1000;
                s[i] = ((Number) e.get("search_ms")).doubleValue() / 1000;
                p[i] = ((Number) e.get("wall_ms")).doubleValue() / 1000;
                candidates = ((Number) e.get("candidate_evaluations")).longValue();
                jobs = ((Number) e.get("spark_jobs")).longValue();
                gflop = ((Number) e.get("work_gflop")).doubleValue();
                perTask = Math.max(perTask, ((Number) e.get("gflop_per_s_per_task")).doubleValue());
            }
            Arrays.sort(p);
            Arrays.sort(c);
            Arrays.sort(s);
            pass[cores] = p[0];
            search[cores] = s[0];
            System.out.printf("%-9s %10.2f %10.2f %10.2f %12d %12.0f %10d %10.1f %12.1f %7.0f%%%n", "local[" + cores + "]",
                    p[0], c[0], s[0], candidates, candidates / s[0], jobs, gflop, perTask, 100 * perTask / peak);
            spark.stop();
            SessionCache.clear();
        }
        System.out.printf("easyquant pass: local[1] %.2f s, local[2] %.2f s: speedup %.2fx (search alone %.2fx; machine's own "
                + "2-thread speedup %.2fx on a compute loop, %.2fx on gemms)%n", pass[1], pass[2], pass[1] / pass[2],
                search[1] / search[2], machine, gemmMachine);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> easyquant(QuantcalJob.Result r) {
        return (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("easyquant");
    }
}
