package io.quantcal.job.bench;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.job.pipeline.CalibratePass;
import io.quantcal.kernels.bench.ThreadScaling;
import io.quantcal.kernels.calib.Batches;
import io.quantcal.kernels.onnx.BatchNormFolder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.kernels.runtime.SessionCache;
import io.quantcal.kernels.stats.Calibrators;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;

/**
 * Calibration against plain inference, side by side in one run: the calibrate pass's Spark work (capture
 * every quantizable input, fold into statistics) and plain ONNX Runtime inference of the same model over the
 * same cached samples, same batching and partitions; then the calibration on local[1] and local[2] beside the
 * machine's own two-thread speedup. Usage: CalibrationBenchmark [CONFIG] [reps=9] [copies=4].
 */
public final class CalibrationBenchmark {

    public static void main(String[] args) throws Exception {
        String conf = "conf/example.conf";
        int r = 9, c = 4;
        for (String a : args) {
            if (a.startsWith("reps=")) r = Integer.parseInt(a.substring(5));
            else if (a.startsWith("copies=")) c = Integer.parseInt(a.substring(7));
            else conf = a;
        }
        final int reps = r, copies = c;
        QuantcalConfig cfg = QuantcalConfig.parse(conf, java.nio.file.Files.readString(Path.of(conf)),
                List.of("calibration.limit=0", "calibration.path=" + "examples/fashion-mnist/eval"));
        OnnxModel model = BatchNormFolder.fold(OnnxModel.load(Path.of(cfg.model()))).model();
        List<String> tensors = new ArrayList<>();
        for (QuantizableNode n : model.quantizableNodes()) if (!tensors.contains(n.input())) tensors.add(n.input());

        double machine = ThreadScaling.speedup(2, 400_000_000L);
        System.out.printf("machine: pure compute loop, 2 threads vs 1: speedup %.2fx%n", machine);

        double[] wall = new double[3];
        for (int cores = 1; cores <= 2; cores++) {
            SparkSession spark = LocalSpark.start(cores);
            JavaRDD<Sample> once = SampleSets.load(spark, cfg, cfg.calibration(),
                    InputBinding.of(model, cfg, cfg.calibration()), 2);
            JavaRDD<Sample> all = once;
            for (int i = 1; i < copies; i++) all = all.union(once);
            JavaRDD<Sample> samples = all.repartition(2).persist(StorageLevel.MEMORY_ONLY());
            long n = samples.count();
            if (cores == 2) {
                System.out.printf("samples: %d (%d eval images x %d), 2 partitions, batch %d, ORT intra-op threads %d, medians of %d interleaved rounds%n",
                        n, n / copies, copies, cfg.calibration().batchSize(), cfg.intraOpThreads(), reps);
                // interleaved rounds (inference, minmax, entropy, inference, ...), so that a slow spell of a shared
                // machine falls on all three alike; the ratios are the medians of each round's own ratios
                double[][][] m = interleaved(reps, List.of(
                        () -> inference(spark, cfg, samples, model),
                        () -> CalibratePass.collect(spark, cfg, samples, model, tensors, Calibrators.byName("minmax", 99.99)),
                        () -> CalibratePass.collect(spark, cfg, samples, model, tensors, Calibrators.byName("entropy", 99.99))));
                double[] inf = medians(m[0]), cal = medians(m[1]), hist = medians(m[2]);
                // the process's CPU time (every thread of this local-mode JVM: tasks, driver, GC, JIT) beside the wall
                // time: on a machine other work shares, wall times stretch with the load, CPU times much less
                System.out.printf("%-44s %10s %12s %10s%n", "local[2]", "wall s", "samples/s", "cpu s");
                System.out.printf("%-44s %10.3f %12.0f %10.3f%n", "plain ONNX Runtime inference", inf[0], n / inf[0], inf[1]);
                System.out.printf("%-44s %10.3f %12.0f %10.3f%n", "calibrate (capture " + tensors.size() + " tensors, min/max)",
                        cal[0], n / cal[0], cal[1]);
                System.out.printf("%-44s %10.3f %12.0f %10.3f%n", "calibrate (entropy: one pass, histograms)", hist[0],
                        n / hist[0], hist[1]);
                System.out.printf("calibration / inference: wall %.2fx, cpu %.2fx (goal <= 1.25x)%n",
                        medianRatio(m[1][0], m[0][0]), medianRatio(m[1][1], m[0][1]));
                System.out.printf("entropy calibration / inference: wall %.2fx, cpu %.2fx (goal <= 1.5x)%n",
                        medianRatio(m[2][0], m[0][0]), medianRatio(m[2][1], m[0][1]));
            }
            wall[cores] = median(reps, () -> CalibratePass.collect(spark, cfg, samples, model, tensors,
                    Calibrators.byName("minmax", 99.99)));
            samples.unpersist(true);
            spark.stop();
            SessionCache.clear();
        }
        System.out.printf("calibrate wall: local[1] %.3f s, local[2] %.3f s: speedup %.2fx (machine's own 2-thread speedup %.2fx)%n",
                wall[1], wall[2], wall[1] / wall[2], machine);
    }

    /** Plain inference of the same model over the same samples, same batching, no captures. */
    static long inference(SparkSession spark, QuantcalConfig cfg, JavaRDD<Sample> samples, OnnxModel model) {
        ModelInputs input = InputBinding.of(model, cfg, cfg.calibration());
        io.quantcal.job.pipeline.BroadcastModel bm = io.quantcal.job.pipeline.BroadcastModel.of(spark, model, "bench", cfg.maxSessions());
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        int batch = cfg.calibration().batchSize();
        return samples.mapPartitions(it -> {
            try (var r = bm.lease(List.of(), opts)) {
                long count = Batches.forEach(r.runner(), input, new io.quantcal.job.pipeline.SampleValues(it), batch, out -> { });
                return List.of(count).iterator();
            }
        }).reduce(Long::sum);
    }

    interface Work {
        Object run() throws Exception;
    }

    /**
     * {@code reps} interleaved rounds of every work (after one warm-up round): per work, its wall seconds and its
     * process CPU seconds, round by round.
     */
    static double[][][] interleaved(int reps, List<Work> works) throws Exception {
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        for (Work w : works) w.run();
        double[][][] out = new double[works.size()][2][reps];
        for (int i = 0; i < reps; i++) {
            for (int k = 0; k < works.size(); k++) {
                long s = System.nanoTime(), cpu = os.getProcessCpuTime();
                works.get(k).run();
                out[k][0][i] = (System.nanoTime() - s) / 1e9;
                out[k][1][i] = (os.getProcessCpuTime() - cpu) / 1e9;
            }
        }
        return out;
    }

    /** Median wall and median CPU seconds. */
    static double[] medians(double[][] wallAndCpu) {
        return new double[] {medianOf(wallAndCpu[0]), medianOf(wallAndCpu[1])};
    }

    /** The median of the rounds' ratios a[i] / b[i]. */
    static double medianRatio(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) r[i] = a[i] / b[i];
        return medianOf(r);
    }

    static double medianOf(double[] v) {
        double[] t = v.clone();
        Arrays.sort(t);
        return t[t.length / 2];
    }

    static double median(int reps, Work w) throws Exception {
        w.run(); // warm-up: sessions created, JIT
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long s = System.nanoTime();
            w.run();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }
}
