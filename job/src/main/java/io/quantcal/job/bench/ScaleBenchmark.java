package io.quantcal.job.bench;

import io.quantcal.job.QuantcalJob;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.job.pipeline.BroadcastModel;
import io.quantcal.job.pipeline.CalibratePass;
import io.quantcal.job.pipeline.TaskMemory;
import io.quantcal.kernels.calib.BatchBudget;
import io.quantcal.kernels.calib.Batches;
import io.quantcal.kernels.onnx.BatchNormFolder;
import io.quantcal.kernels.onnx.ConstantFolder;
import io.quantcal.kernels.onnx.Coverage;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.kernels.runtime.SessionCache;
import io.quantcal.kernels.stats.Calibrators;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;

/**
 * Scale check at real size, one model per JVM (deploy/quantcal-bench scale runs one JVM per model, so that the peak
 * RSS is that model's): layers found against the graph's Conv/Gemm/MatMul nodes; the calibrate pass's Spark work,
 * minmax (goal at 224x224 ≤ 1.25x) and entropy (≤ 1.5x), against plain ONNX Runtime inference of the same model over
 * the same cached samples and partitions, best of reps for each, in alternation, beside calibrate's capture alone (the
 * measured tensors written out by ONNX Runtime and not read: the floor of calibrating through ONNX Runtime's outputs) (the first of each pays for opening
 * its session: with one rep, the ratios say more about session start-up than about the passes); the evaluate pass's
 * time in a whole run (fold-bn, calibrate, export, evaluate) over the same images; and the JVM's peak resident memory
 * (VmHWM). Calibration images: the bundled Fashion-MNIST evaluation images, gray replicated to 3 channels, resized and
 * center-cropped to the model's input size.
 *
 * <p>Usage: ScaleBenchmark model=PATH [images=256] [size=224] [reps=3] [header=true] [master=local[2]] [key=value ...]
 * (other key=value pairs are config overrides, e.g. runtime.memory-budget=1g).
 */
public final class ScaleBenchmark {

    public static void main(String[] args) throws Exception {
        String modelPath = null, master = "local[2]";
        int images = 256, size = 224, reps = 3;
        boolean header = false;
        List<String> overrides = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("model=")) modelPath = a.substring(6);
            else if (a.startsWith("images=")) images = Integer.parseInt(a.substring(7));
            else if (a.startsWith("size=")) size = Integer.parseInt(a.substring(5));
            else if (a.startsWith("reps=")) reps = Integer.parseInt(a.substring(5));
            else if (a.startsWith("header=")) header = Boolean.parseBoolean(a.substring(7));
            else if (a.startsWith("master=")) master = a.substring(7);
            else overrides.add(a);
        }
        if (modelPath == null) throw new IllegalArgumentException("usage: ScaleBenchmark model=PATH [images=N] [size=N] [reps=N]");
        String name = Path.of(modelPath).getFileName().toString().replaceFirst("\\.onnx$", "");
        Path out = Path.of("target", "scale-bench", name).toAbsolutePath();
        List<String> keys = new ArrayList<>(List.of("model=" + modelPath,
                "calibration.path=examples/fashion-mnist/eval", "calibration.limit=" + images,
                "evaluation.path=examples/fashion-mnist/eval", "evaluation.limit=" + images,
                "calibration.preprocess.channels=3", "calibration.preprocess.resize=" + size,
                "calibration.preprocess.width=" + size, "calibration.preprocess.height=" + size,
                "pipeline=[fold-bn,calibrate,export,evaluate]", "output.path=" + out, "output.overwrite=true",
                "spark.master=" + master));
        keys.addAll(overrides);
        QuantcalConfig cfg = QuantcalConfig.parse("conf/example.conf", Files.readString(Path.of("conf/example.conf")), keys);

        // the job's front end: a float16 model as its float32 model, constants folded
        OnnxModel front = ConstantFolder.fold(io.quantcal.kernels.onnx.Float16Upcast.rewrite(
                OnnxModel.load(Path.of(cfg.model()))).model()).model();
        List<Coverage.Entry> coverage = Coverage.of(front);
        long found = coverage.stream().filter(Coverage.Entry::quantized).count();
        OnnxModel model = BatchNormFolder.fold(front).model();
        // what calibrate measures: the export profile's activation tensors
        List<String> tensors = io.quantcal.kernels.onnx.QdqPlacement.plan(model, cfg.export().profile()).ownedTensors();

        SparkSession spark = LocalSpark.start(master);
        int partitions = SampleSets.partitions(spark, cfg.calibration());
        io.quantcal.kernels.runtime.ModelInputs input = io.quantcal.job.data.InputBinding.of(model, cfg, cfg.calibration());
        JavaRDD<Sample> samples = SampleSets.load(spark, cfg, cfg.calibration(), input, partitions)
                .persist(StorageLevel.MEMORY_AND_DISK());
        long n = samples.count();

        // what the memory budget makes of this model: one sample's bytes when all its tensors are captured (what
        // calibrate and evaluate return), and calibrate's batch: what the budget allows, and what keeps a run's
        // captured values within the cache-sized bound (Batches.cachedRun)
        BatchBudget budget = TaskMemory.budget(spark.sparkContext(), cfg);
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        var one = input.stack(List.of(samples.first().inputs()));
        long perSample, captured;
        Map<String, Long> tensorBytes = new java.util.LinkedHashMap<>();
        try (var all = SessionCache.lease(model, tensors, opts)) {
            var returned = all.runner().runInputs(one);
            returned.forEach((t, v) -> tensorBytes.put(t, BatchBudget.bytes(Map.of(t, v))));
            captured = BatchBudget.bytes(returned);
            perSample = captured + io.quantcal.kernels.calib.Batches.inputBytes(one);
        }
        // the capture floor captures as calibrate does: all tensors in one pass, or in the groups calibrate makes when
        // one sample's tensors do not fit the budget
        List<List<String>> groups = budget.fits(perSample) ? List.of(tensors)
                : io.quantcal.kernels.calib.CaptureOverBudget.groups(tensors, tensorBytes,
                        io.quantcal.kernels.calib.Batches.inputBytes(one), budget, name);
        // one sample's tensors over the budget: calibrate captures them in groups, one sample per run (as the job does)
        int calBatch = !budget.fits(perSample) ? 1 : Math.min(Math.min(cfg.calibration().batchSize(),
                budget.batchSize(perSample, name)), io.quantcal.kernels.calib.Batches.cachedRun(captured));
        SessionCache.clear();

        double inf = Double.MAX_VALUE, cap = Double.MAX_VALUE, cal = Double.MAX_VALUE, ent = Double.MAX_VALUE;
        for (int r = 0; r < reps; r++) { // alternate, best of reps: the machine is shared
            inf = Math.min(inf, time(() -> inference(spark, cfg, samples, model)));
            cap = Math.min(cap, time(() -> capture(spark, cfg, samples, model, groups)));
            cal = Math.min(cal, time(() -> CalibratePass.collect(spark, cfg, samples, model, tensors,
                    Calibrators.byName("minmax", 99.99))));
            ent = Math.min(ent, time(() -> CalibratePass.collect(spark, cfg, samples, model, tensors,
                    Calibrators.byName("entropy", 99.99))));
        }
        samples.unpersist(true);
        SessionCache.clear();

        ByteArrayOutputStream console = new ByteArrayOutputStream();
        QuantcalJob.Result result = QuantcalJob.run(spark, cfg, new PrintStream(console, true, StandardCharsets.UTF_8));
        @SuppressWarnings("unchecked")
        Map<String, Object> timings = (Map<String, Object>) result.summary().get("timings_ms");
        double evalS = ((Number) timings.get("evaluate")).doubleValue() / 1000;
        String speed = qdqSpeed(result.summary());
        String evalLine = console.toString(StandardCharsets.UTF_8).lines().filter(l -> l.startsWith("evaluate: ") && !l.startsWith("evaluate: warning"))
                .findFirst().orElse("");
        spark.stop();

        if (header) {
            System.out.printf("%s, %d partitions, ORT intra-op threads %d, batch %d (calibrate: memory budget %s per task), best of %d%n",
                    master, partitions, cfg.intraOpThreads(),
                    cfg.calibration().batchSize(), BatchBudget.mib(budget.budgetBytes()), reps);
            System.out.printf("%-13s %9s %6s %10s %11s %9s %6s %11s %6s %9s %6s %10s %10s %9s %9s%n", "model", "layers", "images",
                    "per sample", "inference s", "capture s", "ratio", "calibrate s", "ratio", "entropy s", "ratio", "cal batch",
                    "evaluate s", "QDQ speed", "peak RSS");
        }
        System.out.printf("%-13s %9s %6d %10s %11.1f %9.1f %5.2fx %11.1f %5.2fx %9.1f %5.2fx %10d %10.1f %9s %9s%n", name,
                found + "/" + coverage.size(), n, BatchBudget.mib(perSample), inf, cap, cap / inf, cal, cal / inf, ent,
                ent / inf, calBatch, evalS, speed, peakRss());
        System.out.println("              " + evalLine);
    }

    /**
     * The exported QDQ model's speed-up over FP32 as evaluate measured it (run.json passes.evaluate.speed: one batch
     * of up to 8 samples at the model's real input size, runtime.intra-op-threads threads), e.g. "1.63x"; "-" when
     * evaluation.speed is off.
     */
    @SuppressWarnings("unchecked")
    static String qdqSpeed(Map<String, Object> summary) {
        Object passes = summary.get("passes");
        Object ev = passes instanceof Map<?, ?> p ? p.get("evaluate") : null;
        Object sp = ev instanceof Map<?, ?> e ? e.get("speed") : null;
        Object up = sp instanceof Map<?, ?> m ? m.get("speedup") : null;
        return up instanceof Number n ? String.format(java.util.Locale.ROOT, "%.2fx", n.doubleValue()) : "-";
    }

    static long inference(SparkSession spark, QuantcalConfig cfg, JavaRDD<Sample> samples, OnnxModel model) {
        return CalibrationBenchmark.inference(spark, cfg, samples, model);
    }

    /**
     * The floor of any calibration that reads the tensors out of ONNX Runtime: calibrate's capture (the same session
     * with the measured tensors as outputs, the same batches under the same memory budget, written into the same
     * pinned buffers, one pass per group of tensors as calibrate makes them) with nothing read from them. What
     * calibrate adds to this is the statistics.
     */
    static long capture(SparkSession spark, QuantcalConfig cfg, JavaRDD<Sample> samples, OnnxModel model,
                        List<List<String>> groups) {
        io.quantcal.kernels.runtime.ModelInputs input = io.quantcal.job.data.InputBinding.of(model, cfg, cfg.calibration());
        BroadcastModel bm = BroadcastModel.of(spark, model, "bench", cfg.maxSessions());
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        BatchBudget budget = TaskMemory.budget(spark.sparkContext(), cfg);
        long n = 0;
        for (List<String> group : groups) {
            bm.closeSessions(); // one group's session at a time, as calibrate does
            n += samples.mapPartitions(it -> {
                try (var r = bm.lease(group, opts)) {
                    long count = Batches.forEachPinned(r.runner(), input, new io.quantcal.job.pipeline.SampleValues(it),
                            budget, "bench", group, (k, t, values) -> { });
                    return List.of(count).iterator();
                }
            }).reduce(Long::sum);
        }
        return n;
    }

    interface Work {
        Object run() throws Exception;
    }

    static double time(Work w) throws Exception {
        long s = System.nanoTime();
        w.run();
        return (System.nanoTime() - s) / 1e9;
    }

    /** This JVM's peak resident set (VmHWM of /proc/self/status), e.g. "3.41 GiB". */
    static String peakRss() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) {
                    long kb = Long.parseLong(l.replaceAll("[^0-9]", ""));
                    return String.format("%.2f GiB", kb / 1048576.0);
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // not Linux
        }
        return "n/a";
    }
}
