package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.io.OutputDirectory;
import io.quantcal.job.pipeline.BiasCorrectPass;
import io.quantcal.job.pipeline.CalibratePass;
import io.quantcal.job.pipeline.FoldBatchNormPass;
import io.quantcal.job.pipeline.Pass;
import io.quantcal.job.pipeline.PipelineState;
import io.quantcal.job.pipeline.RunContext;
import io.quantcal.kernels.dfq.ChannelMeans;
import io.quantcal.kernels.onnx.ConstantFolder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13, "one pass over the data": empirical bias correction's E[x] comes from calibrate's scan when the FP network
 * bias-correct reads is the one calibrate ran. On the bundled example (40 samples in batches of 6, 3 partitions):
 * calibrate's means against an independent reference and against bias-correct's own scan, the corrected biases both
 * ways, where run.json says the means came from, and how many passes over the data the run made.
 */
class BiasCorrectMeansTest extends SparkJobTest {

    static final String[] SMALL = {"calibration.limit=40", "calibration.batch-size=6", "calibration.partitions=3",
            "quantization.weights.granularity=per-tensor"};

    /** 2⁻⁵³, the unit roundoff of double. */
    static final double U = Math.ulp(1.0) / 2;

    @TempDir
    Path tmp;

    static PipelineState run(RunContext ctx, Pass p, PipelineState s) {
        ctx.progress().beginPass(p.name());
        try {
            return p.run(ctx, s);
        } finally {
            ctx.progress().endPass();
        }
    }

    @Test
    void calibratesMeansEqualTheOwnScansAndTheReference() throws Exception {
        QuantcalConfig given = JobFixtures.config(RESNET, CALIB, tmp.resolve("out").toString(),
                JobFixtures.concat(SMALL, "pipeline=[fold-bn, calibrate, bias-correct, export]"));
        HadoopFiles files = new HadoopFiles(spark().sparkContext().hadoopConfiguration());
        QuantcalConfig cfg = given.resolvedPaths(p -> files.qualify(p).toString());
        Assertions.assertTrue(BiasCorrectPass.meansFromCalibrate(cfg));
        OutputDirectory output = OutputDirectory.begin(files, cfg.outputPath(), false, "means", l -> { });
        RunContext ctx = new RunContext(spark(), cfg, files, output, "means", out);
        try {
            OnnxModel model = ConstantFolder.fold(OnnxModel.load(Path.of(RESNET))).model();
            PipelineState folded = run(ctx, new FoldBatchNormPass(), PipelineState.initial("resnet_small.onnx", model));
            PipelineState cal = run(ctx, new CalibratePass(), folded);
            long afterCalibrate = ctx.samples().read();
            assertEquals(40, afterCalibrate, "calibrate reads each sample once");
            assertNotNull(cal.inputMeans(), "calibrate gathered the means for bias-correct");
            assertEquals(cal.model().sha256(), cal.inputMeans().modelSha256());
            List<QuantizableNode> convs = cal.nodes().stream().filter(n -> n.opType().equals("Conv")).toList();
            Map<String, ChannelMeans> fromCalibrate = cal.inputMeans().byTensor();
            assertEquals(convs.stream().map(QuantizableNode::input).distinct().toList(), List.copyOf(fromCalibrate.keySet()));

            // bias-correct with calibrate's means: no data read
            PipelineState one = run(ctx, new BiasCorrectPass(), cal);
            assertEquals(afterCalibrate, ctx.samples().read(), "bias-correct read no sample");
            assertEquals("from calibrate", summary(one).get("input_means"));
            // the same without them: today's own scan, one more pass over the data
            PipelineState two = run(ctx, new BiasCorrectPass(), cal.withInputMeans(null));
            assertEquals(2 * afterCalibrate, ctx.samples().read(), "the own scan reads every sample again");
            assertEquals("own scan (calibrate gathered no means)", summary(two).get("input_means"));
            Map<String, ChannelMeans> own = BiasCorrectPass.inputMeans(ctx, cal.model(), convs);

            // independent references on the driver: ONNX Runtime one sample at a time, exact (BigDecimal) sums.
            // ref: capturing only the Conv inputs, as the own scan does; refCal: capturing what calibrate measures too
            // (the Conv outputs before each residual Add among them). ORT fuses Conv + Add (+ Relu) only where the Conv
            // output is not a graph output, so the two networks round the residual sums differently in float32.
            List<String> tensors = List.copyOf(fromCalibrate.keySet());
            List<String> measured = io.quantcal.kernels.onnx.QdqPlacement.plan(cal.model(), cfg.export().profile()).ownedTensors();
            Reference ref = reference(ctx, cfg, cal.model(), tensors, List.of());
            Reference refCal = reference(ctx, cfg, cal.model(), tensors, measured);
            double worstCal = 0, worstOwn = 0;
            Map<String, double[]> delta = new LinkedHashMap<>();
            for (String t : tensors) {
                double[] a = fromCalibrate.get(t).means(), b = own.get(t).means();
                assertEquals(ref.count(t), fromCalibrate.get(t).count(), t);
                assertEquals(ref.count(t), own.get(t).count(), t);
                double[] exactCal = refCal.means(t), exact = ref.means(t), abs = ref.absMeans(t);
                double[] d = new double[a.length];
                for (int c = 0; c < a.length; c++) {
                    // calibrate: the exact Σ of the per-sample double sums, rounded once, then divided: 2 roundings
                    Assertions.assertTrue(Math.abs(a[c] - exactCal[c]) <= 2 * U * Math.abs(exactCal[c]),
                            t + "[" + c + "] from calibrate " + a[c] + " vs reference " + exactCal[c]);
                    // own scan: left-to-right Σ of n per-sample sums, error ≤ (n − 1)·u·Σ|s_i|, then the division
                    Assertions.assertTrue(Math.abs(b[c] - exact[c]) <= (ref.samples() - 1) * U * abs[c] + 2 * U * Math.abs(exact[c]),
                            t + "[" + c + "] own scan " + b[c] + " vs reference " + exact[c]);
                    // calibrate vs own scan: E over the same float32 activations up to a few float32 roundings
                    // (2⁻²⁴ ≈ 6e-8 each) where ORT fused differently: 1e-6 of E|x| leaves a margin of 10 and more
                    Assertions.assertTrue(Math.abs(a[c] - b[c]) <= 1e-6 * abs[c], t + "[" + c + "] from calibrate " + a[c]
                            + " vs own scan " + b[c]);
                    d[c] = Math.abs(a[c] - b[c]);
                    worstCal = Math.max(worstCal, Math.abs(a[c] - exactCal[c]) / Math.max(Double.MIN_NORMAL, abs[c]));
                    worstOwn = Math.max(worstOwn, d[c] / Math.max(Double.MIN_NORMAL, abs[c]));
                }
                delta.put(t, d);
            }
            System.out.printf("E[x]: calibrate vs reference %.3g of E|x| at most; calibrate vs own scan %.3g%n", worstCal, worstOwn);

            // the corrected biases b − (W̃ − W)·E[x] in float32: the two differ by at most Σ|W̃ − W|·|ΔE[x]| (the
            // output shift is linear in E[x]) plus one float32 rounding
            int differing = 0, total = 0;
            double worstUlps = 0;
            for (QuantizableNode n : convs) {
                float[] x = one.model().initializerFloats(n.bias()), y = two.model().initializerFloats(n.bias());
                float[] before = cal.model().initializerFloats(n.bias());
                float[] w = cal.model().initializerFloats(n.weight());
                float[] q = io.quantcal.kernels.quant.FakeQuant.apply(w, cal.model().shape(n.weight()),
                        cal.quant().get(n.name() + "/weight").params());
                float[] absEps = new float[w.length];
                for (int i = 0; i < w.length; i++) absEps[i] = Math.abs(q[i] - w[i]);
                double[] bound = io.quantcal.kernels.dfq.BiasCorrection.outputShift(new float[w.length], absEps,
                        n.weightShape(), n.group(), delta.get(n.input()));
                assertEquals(y.length, x.length);
                for (int i = 0; i < x.length; i++) {
                    total++;
                    if (x[i] != y[i]) differing++;
                    worstUlps = Math.max(worstUlps, Math.abs(x[i] - y[i]) / Math.ulp(y[i]));
                    Assertions.assertTrue(Math.abs(x[i] - y[i]) <= bound[i] * 1.001 + Math.ulp(y[i]), n.name() + " bias " + i
                            + ": " + x[i] + " vs own scan " + y[i] + ", bound " + bound[i]);
                }
                Assertions.assertFalse(java.util.Arrays.equals(before, x), n.name() + ": the bias was corrected");
            }
            System.out.printf("corrected biases: %d of %d differ from the own scan's, by %.1f float32 ulps at most%n",
                    differing, total, worstUlps);
        } finally {
            ctx.samples().release();
        }
    }

    /** Spark jobs per job group (the pass) of one run. */
    Map<String, Integer> jobsPerPass(String runId, Runnable run) throws Exception {
        List<String> groups = Collections.synchronizedList(new ArrayList<>());
        SparkListener l = new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart e) {
                groups.add(e.properties().getProperty("spark.jobGroup.id"));
            }
        };
        spark().sparkContext().addSparkListener(l);
        try {
            run.run();
            spark().sparkContext().listenerBus().waitUntilEmpty();
        } finally {
            spark().sparkContext().removeSparkListener(l);
        }
        Map<String, Integer> per = new java.util.TreeMap<>();
        for (String g : groups) per.merge(g.substring(("quantcal-" + runId + "-").length()), 1, Integer::sum);
        return per;
    }

    @Test
    void theRunSaysWhereTheMeansCameFromAndReadsTheDataOnce() throws Exception {
        Path dir = tmp.resolve("job");
        QuantcalJob.Result[] r = new QuantcalJob.Result[1];
        Map<String, Integer> jobs = jobsPerPass("test-run", () -> r[0] = QuantcalJob.run(spark(), JobFixtures.config(RESNET,
                CALIB, dir.toString(), JobFixtures.concat(SMALL, "pipeline=[fold-bn, calibrate, bias-correct, export]")), out));
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("run.json").toFile());
        assertEquals("from calibrate", json.get("passes").get("bias-correct").get("input_means").asText());
        assertEquals(5, json.get("passes").get("calibrate").get("input_means_for_bias_correct").asInt(),
                "the inputs of the 6 Conv layers (block2's first Conv and its projection share theirs)");
        assertEquals(6, json.get("passes").get("bias-correct").get("corrections").size());
        // one pass over the 40 samples (calibrate); bias-correct's own scan read them a second time (80)
        assertEquals(40, json.get("calibration_samples_read").asLong());
        assertEquals(40, json.get("calibration_samples_decoded").asLong());
        assertNull(jobs.get("bias-correct"), "bias-correct runs no Spark job: " + jobs);
        Assertions.assertTrue(jobs.get("calibrate") >= 1, jobs.toString());
        Assertions.assertTrue(console.toString(java.nio.charset.StandardCharsets.UTF_8)
                .contains("Conv biases corrected, E[x] from calibrate"));
    }

    @Test
    void runsThatNeedNoMeansCaptureNone() throws Exception {
        // analytic bias correction reads no data; a pipeline without bias-correct needs no means: calibrate does what
        // it did before (min/max reduced in the session, no tensor leaves it)
        for (String[] c : List.of(new String[] {"pipeline=[fold-bn, calibrate, bias-correct, export]", "dfq.bias-correction=analytic"},
                new String[] {"pipeline=[fold-bn, calibrate, export]"})) {
            Path dir = tmp.resolve("none-" + c.length);
            QuantcalConfig cfg = JobFixtures.config(RESNET, CALIB, dir.toString(), JobFixtures.concat(SMALL, c));
            Assertions.assertFalse(BiasCorrectPass.meansFromCalibrate(cfg), List.of(c).toString());
            QuantcalJob.run(spark(), cfg, out);
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("run.json").toFile());
            Assertions.assertFalse(json.get("passes").get("calibrate").has("input_means_for_bias_correct"), json.toString());
            assertEquals(40, json.get("calibration_samples_read").asLong());
            if (json.get("passes").has("bias-correct")) {
                assertEquals("analytic", json.get("passes").get("bias-correct").get("variant").asText());
                Assertions.assertFalse(json.get("passes").get("bias-correct").has("input_means"));
            }
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> summary(PipelineState s) {
        return (Map<String, Object>) s.summary().get("bias-correct");
    }

    /** Per channel: exact Σ over samples of each sample's double channel sum, Σ of |sample sum|, values per channel. */
    record Reference(Map<String, BigDecimal[]> sums, Map<String, double[]> abs, Map<String, Long> counts, int samples) {
        double[] means(String t) {
            BigDecimal[] s = sums.get(t);
            double[] m = new double[s.length];
            for (int c = 0; c < m.length; c++) m[c] = s[c].doubleValue() / counts.get(t);
            return m;
        }

        double[] absMeans(String t) {
            double[] a = abs.get(t).clone();
            for (int c = 0; c < a.length; c++) a[c] /= counts.get(t);
            return a;
        }

        long count(String t) {
            return counts.get(t);
        }
    }

    /** The reference on the driver: ONNX Runtime on one sample at a time, sums in BigDecimal. */
    static Reference reference(RunContext ctx, QuantcalConfig cfg, OnnxModel model, List<String> tensors, List<String> alsoCaptured) {
        ModelInputs inputs = InputBinding.of(model, cfg, cfg.calibration());
        List<Sample> samples = new ArrayList<>(ctx.samples().get(inputs).collect());
        samples.removeIf(s -> !s.ok());
        samples.sort(Comparator.comparingLong(Sample::id));
        Map<String, BigDecimal[]> sums = new LinkedHashMap<>();
        Map<String, double[]> abs = new LinkedHashMap<>();
        Map<String, Long> counts = new LinkedHashMap<>();
        List<String> captures = new ArrayList<>(tensors);
        for (String t : alsoCaptured) if (!captures.contains(t)) captures.add(t);
        try (ModelRunner r = ModelRunner.open(model, captures, new RunnerOptions(1, 1))) {
            for (Sample s : samples) {
                Map<String, FloatTensor> outs = r.runInputs(inputs.stack(List.of(s.inputs())));
                for (String t : tensors) {
                    FloatTensor v = outs.get(t);
                    int c = (int) v.shape()[1], inner = v.data().length / c;
                    BigDecimal[] acc = sums.computeIfAbsent(t, k -> Collections.nCopies(c, BigDecimal.ZERO).toArray(new BigDecimal[0]));
                    double[] a = abs.computeIfAbsent(t, k -> new double[c]);
                    for (int ch = 0; ch < c; ch++) {
                        double sum = 0;
                        for (int k = 0; k < inner; k++) sum += v.data()[ch * inner + k];
                        acc[ch] = acc[ch].add(new BigDecimal(sum));
                        a[ch] += Math.abs(sum);
                    }
                    counts.merge(t, (long) inner, Long::sum);
                }
            }
        }
        return new Reference(sums, abs, counts, samples.size());
    }
}
