package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.kernels.calib.ActivationStatistics;
import io.quantcal.kernels.calib.LayerCalibration;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqPlacement;
import io.quantcal.kernels.onnx.QdqProfile;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.kernels.stats.Calibrator;
import io.quantcal.kernels.stats.Calibrators;
import io.quantcal.kernels.stats.HistogramSpec;
import io.quantcal.kernels.stats.TensorStats;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

/**
 * {@code calibrate}: weights on the driver (per tensor or per channel), activations over the calibration
 * data in Spark. Each partition runs the model in ONNX Runtime (one cached session per executor JVM),
 * capturing every activation the export profile's placement quantizes ({@link QdqPlacement}), and returns its partial statistics keyed by
 * partition; the driver merges them in partition order. One pass over the data for every calibrator, reading the
 * captured tensors where ONNX Runtime wrote them: minmax keeps exact min/max; a histogram calibrator builds
 * exponent-binned histograms (bins fixed by the float's
 * bits, not by the data, so partial histograms merge exactly by adding counts) with exact min/max, and the driver
 * re-bins each merged one into the regular bins the calibrator reads, placed from that min/max.
 *
 * <p>When a later {@code bias-correct} (empirical) needs E[x] of each Conv's input on this same FP network
 * ({@link BiasCorrectPass#meansFromCalibrate}), the same pass also sums those tensors per channel
 * ({@link io.quantcal.kernels.calib.SampleChannelSums}: a double sum per sample, added exactly across samples, so no
 * partitioning changes a bit) and hands the means on in the pipeline state: bias-correct then reads no data. Runs that
 * do not need them capture nothing more than before.
 */
public final class CalibratePass implements Pass {

    /** Operators of quantized models: QDQ, QOperator and dynamic quantization (default and com.microsoft domains). */
    static final java.util.Set<String> QUANTIZED_OPS = java.util.Set.of("QuantizeLinear", "DequantizeLinear",
            "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "QGemm",
            "DynamicQuantizeMatMul", "MatMulIntegerToFloat");

    @Override
    public String name() {
        return "calibrate";
    }

    /** "; its LSTM node 'l' ... stays FP32: why" for each other layer with weights, or "". */
    private static String otherLayers(OnnxModel model) {
        StringBuilder b = new StringBuilder();
        for (var e : io.quantcal.kernels.onnx.Coverage.otherLayers(model)) {
            b.append("; its ").append(e.opType()).append(" node '").append(e.node()).append("' stays FP32: ").append(e.reason());
        }
        return b.toString();
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        QuantcalConfig cfg = ctx.config();
        OnnxModel model = state.model();
        List<QuantizableNode> nodes = state.nodes();
        if (nodes.isEmpty()) {
            int nested = io.quantcal.kernels.onnx.Coverage.inSubgraphs(model).size();
            // a model quantized already (a QDQ export, ONNX Runtime's dynamic quantization) says so
            Map<String, Integer> quantizedOps = new java.util.TreeMap<>();
            for (var n : model.nodes()) {
                if (QUANTIZED_OPS.contains(n.getOpType())) quantizedOps.merge(n.getOpType(), 1, Integer::sum);
            }
            throw new io.quantcal.kernels.onnx.ModelException("model " + cfg.model()
                    + (quantizedOps.isEmpty() ? "" : " is quantized already (" + quantizedOps + "): give quantcal the"
                            + " float model it was made from; it")
                    + " has no quantizable node (Conv, Gemm, or MatMul with a constant weight) in its main graph"
                    + (nested == 0 ? "" : "; " + nested + " Conv/ConvTranspose/Gemm/MatMul node" + (nested == 1 ? "" : "s")
                            + " inside its If/Loop/Scan subgraphs " + (nested == 1 ? "stays" : "stay") + " FP32: "
                            + io.quantcal.kernels.onnx.Coverage.IN_SUBGRAPH
                            + (model.nodes().stream().anyMatch(n -> n.getOpType().equals("If"))
                                    ? "; an If whose condition only inputs fed one value decide (a sample rate) runs its"
                                            + " branch in the main graph when they are fixed: "
                                            + io.quantcal.job.config.QuantcalConfig.Inputs.VALUES_KEY + " { name = value }"
                                    : ""))
                    + otherLayers(model));
        }
        Map<String, TensorQuant> quant = new LinkedHashMap<>();
        Calibrator wCal = Calibrators.byName(cfg.weights().calibrator(), cfg.weights().percentile());
        Calibrator aCal = Calibrators.byName(cfg.activations().calibrator(), cfg.activations().percentile());

        // The profile's placement says which activations the QDQ model quantizes; each tensor that owns its
        // parameters is measured in the same pass over the data (a shape-only op's output takes its input's).
        QdqProfile profile = cfg.export().profile();
        QdqPlacement placement = QdqPlacement.plan(model, profile);
        List<String> tensors = placement.ownedTensors();
        // E[x] of each Conv input for a later bias-correct, gathered in this pass when that pass can use it
        Map<String, Integer> meanTensors = BiasCorrectPass.meansFromCalibrate(cfg)
                ? io.quantcal.kernels.dfq.BiasCorrection.convInputChannels(nodes) : Map.of();
        Collected c = collect(ctx, model, tensors, aCal, meanTensors);
        Map<String, QuantParams> owned = new LinkedHashMap<>();
        for (String t : tensors) {
            owned.put(t, LayerCalibration.activation(c.stats().get(t), cfg.activations().bits(),
                    cfg.activations().symmetric() || profile.signedSymmetricActivations(),
                    profile.signedSymmetricActivations(), aCal));
        }
        for (String t : tensors) ctx.report().activation(t, c.stats().get(t), owned.get(t), aCal.name());
        Map<String, QuantParams> params = new LinkedHashMap<>();
        for (QdqPlacement.Site s : placement.sites()) params.put(s.tensor(), owned.get(s.owner()));

        boolean quantizeBias = ExportPass.options(cfg).quantizeBias();
        List<String> raisedForBias = new java.util.ArrayList<>();
        for (QuantizableNode n : nodes) {
            quant.put(n.name() + "/activation", new TensorQuant(n.input(), n.name(), n.opType(), "activation",
                    params.get(n.input()), aCal.name(), null, null, null));
            QuantParams w = LayerCalibration.weight(n.weight(), model.initializerFloats(n.weight()), model.shape(n.weight()),
                    n.weightAxis(), cfg.weights().perChannel(), cfg.weights().bits(), cfg.weights().symmetric(), wCal);
            if (quantizeBias) {
                // all-but-zero channels with a bias: their scale raised so the int32 bias holds it (integer kernel)
                QuantParams raised = io.quantcal.kernels.onnx.QdqExporter.weightScalesForBias(model, n, params.get(n.input()), w);
                if (raised != w) {
                    for (int ch = 0; ch < w.channels(); ch++) {
                        if (raised.scale(ch) != w.scale(ch)) raisedForBias.add(n.name() + "[" + ch + "]");
                    }
                    w = raised;
                }
            }
            quant.put(n.name() + "/weight", new TensorQuant(n.weight(), n.name(), n.opType(), "weight", w, wCal.name(),
                    null, null, null));
        }
        // the profile's further activations: one row per planned reader, or under the node that computes a tensor
        // no planned node reads (a quantized output)
        java.util.Set<String> quantizableInputs = new java.util.HashSet<>();
        for (QuantizableNode n : nodes) quantizableInputs.add(n.name() + "|" + n.input());
        for (QdqPlacement.Site s : placement.sites()) {
            QuantParams p = params.get(s.tensor());
            List<QdqPlacement.Reader> readers = s.readers().isEmpty() && s.producer() != null
                    ? List.of(new QdqPlacement.Reader(s.producer(), s.producerOp())) : s.readers();
            for (QdqPlacement.Reader r : readers) {
                if (quantizableInputs.contains(r.node() + "|" + s.tensor())) continue;
                quant.put(TensorQuant.extraKey(r.node(), s.tensor()), new TensorQuant(s.tensor(), r.node(), r.opType(),
                        "activation", p, aCal.name(), null, null, null));
            }
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("samples", c.samples());
        summary.put("skipped_samples", c.skipped().size());
        if (!c.skipped().isEmpty()) summary.put("skipped", c.skipped());
        ModelInputs inputs = InputBinding.of(model, cfg, cfg.calibration());
        summary.put("inputs", inputs.inputs().stream().map(ModelInputs.Input::describe).toList());
        summary.put("batch_per_run", inputs.runBatch(cfg.calibration().batchSize()));
        summary.put("profile", profile.id());
        summary.put("activation_tensors", placement.sites().size());
        summary.put("activation_tensors_measured", tensors.size());
        summary.put("passes_over_data", c.passes());
        if (!meanTensors.isEmpty()) summary.put("input_means_for_bias_correct", meanTensors.size());
        if (!raisedForBias.isEmpty()) summary.put("weight_channels_raised_for_int32_bias", raisedForBias);
        summary.put("weights_calibrator", wCal.name());
        summary.put("activations_calibrator", aCal.name());
        ctx.out().printf("calibrate: %d samples (%d skipped), %d activation tensors (profile %s), %d layers, %d pass(es) over the data%n",
                c.samples(), c.skipped().size(), placement.sites().size(), profile.id(), nodes.size(), c.passes());
        if (!raisedForBias.isEmpty()) {
            ctx.out().printf("calibrate: %d weight channels with all but zero weights take a larger scale so that their"
                    + " int32 bias holds their bias (run.json calibrate.weight_channels_raised_for_int32_bias)%n",
                    raisedForBias.size());
        }
        PipelineState calibrated = state.withQuant(quant).withSummary(name(), summary);
        if (!meanTensors.isEmpty()) {
            calibrated = calibrated.withInputMeans(new PipelineState.InputMeans(model.sha256(), c.channelMeans()));
        }
        return cfg.weights().rounding().stochastic() ? StochasticRounding.apply(ctx, calibrated) : calibrated;
    }

    /**
     * Merged statistics of the calibration data; {@code channelMeans}: per-channel sums of the tensors asked for
     * (empty when none were).
     */
    public record Collected(Map<String, TensorStats> stats, long samples, List<String> skipped, int passes,
                            Map<String, io.quantcal.kernels.dfq.ChannelMeans> channelMeans) {}

    static Collected collect(RunContext ctx, OnnxModel model, List<String> tensors, Calibrator calibrator,
                             Map<String, Integer> meanTensors) {
        QuantcalConfig cfg = ctx.config();
        JavaRDD<Sample> samples = ctx.samples().get(InputBinding.of(model, cfg, cfg.calibration())); // decoded once per run
        try {
            return collect(ctx.spark(), cfg, samples, model, tensors, calibrator, meanTensors, ctx.progress());
        } finally {
            // local mode runs the tasks in this JVM: release the capture session's ONNX Runtime arena now, not at exit
            io.quantcal.kernels.runtime.SessionCache.evict(model.sha256());
        }
    }

    /** Statistics of {@code samples} in one pass: min/max, or exponent-binned histograms re-binned for the calibrator. */
    public static Collected collect(org.apache.spark.sql.SparkSession spark, QuantcalConfig cfg, JavaRDD<Sample> samples,
                                    OnnxModel model, List<String> tensors, Calibrator calibrator) {
        return collect(spark, cfg, samples, model, tensors, calibrator, Map.of(), Progress.quiet(spark.sparkContext()));
    }

    /**
     * @param meanTensors tensors to sum per channel in the same pass (tensor → channels), for bias-correct's E[x];
     *                    empty: none, and the pass captures exactly what the calibrator needs
     */
    static Collected collect(org.apache.spark.sql.SparkSession spark, QuantcalConfig cfg, JavaRDD<Sample> samples,
                             OnnxModel model, List<String> tensors, Calibrator calibrator,
                             Map<String, Integer> meanTensors, Progress progress) {
        ModelInputs input = InputBinding.of(model, cfg, cfg.calibration());
        BroadcastModel bm = BroadcastModel.of(spark, model, "model", cfg.maxSessions());
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        io.quantcal.kernels.calib.BatchBudget batch = TaskMemory.budget(spark.sparkContext(), cfg);
        boolean skipBad = cfg.calibration().skipBadSamples();
        String means = meanTensors.isEmpty() ? "" : " + E[x] of " + meanTensors.size() + " Conv inputs for bias-correct";

        if (!calibrator.needsHistogram()) {
            progress.step("activation statistics: min/max of " + tensors.size() + " tensors" + means, 0);
            Tuple2<Result, Integer> rg = runInGroups(samples, bm, input, tensors, meanTensors, opts, batch, skipBad, false, progress);
            Result r = rg._1();
            return new Collected(r.partial().stats(), r.partial().samples(), r.skipped(), rg._2(), channelMeans(r.partial()));
        }
        // one pass: histograms whose bins do not depend on the data, with exact min and max; the regular bins the
        // calibrator reads are placed from the merged min/max afterwards and filled by re-binning
        progress.step("activation statistics: min/max and histograms of " + tensors.size() + " tensors (" + calibrator.name() + ")"
                + means, 0);
        Tuple2<Result, Integer> rg = runInGroups(samples, bm, input, tensors, meanTensors, opts, batch, skipBad, true, progress);
        Result r = rg._1();
        Map<String, TensorStats> stats = new LinkedHashMap<>();
        for (String t : tensors) {
            TensorStats s = r.partial().stats().get(t);
            if (s == null) throw new IllegalStateException("no statistics for tensor " + t + " (no samples?)");
            HistogramSpec h = calibrator.histogramSpec(s.minMax(), cfg.activations().symmetric()).orElseThrow();
            stats.put(t, s.withHistogram(withBins(h, s, cfg.activations().histogramBins())));
        }
        return new Collected(stats, r.partial().samples(), r.skipped(), rg._2(), channelMeans(r.partial()));
    }

    /** The exact per-channel sums, each rounded to double once. */
    private static Map<String, io.quantcal.kernels.dfq.ChannelMeans> channelMeans(ActivationStatistics.Partial p) {
        Map<String, io.quantcal.kernels.dfq.ChannelMeans> m = new LinkedHashMap<>();
        p.channelSums().forEach((t, s) -> m.put(t, s.toChannelMeans()));
        return m;
    }

    private static HistogramSpec withBins(HistogramSpec h, TensorStats s, int bins) {
        return h.isSymmetric() ? HistogramSpec.symmetric(s.minMax(), bins) : HistogramSpec.range(s.minMax(), bins);
    }

    record Result(ActivationStatistics.Partial partial, List<String> skipped) {}

    /** A task's statistics and skipped samples; or, when one sample's captures exceeded the budget, their sizes. */
    record Part(ActivationStatistics.Partial partial, List<String> skipped, OverBudget.Sizes over)
            implements java.io.Serializable {}

    /**
     * {@link #run} over all of {@code tensors} in one pass when one sample's captures fit the memory budget; else in
     * groups that do, one pass over the (cached) samples each, their statistics put together: each tensor's statistics
     * come from one group's pass over every sample, so they are those of a single pass.
     *
     * @return the result and the number of passes over the data
     */
    private static Tuple2<Result, Integer> runInGroups(JavaRDD<Sample> samples, BroadcastModel bm, ModelInputs input,
                                                       List<String> tensors, Map<String, Integer> meanTensors,
                                                       RunnerOptions opts, io.quantcal.kernels.calib.BatchBudget batch,
                                                       boolean skipBad, boolean histograms, Progress progress) {
        OverBudget over;
        try {
            return new Tuple2<>(run(samples, bm, input, tensors, meanTensors, opts, batch, skipBad, histograms), 1);
        } catch (OverBudget e) {
            over = e;
        }
        List<String> all = new ArrayList<>(tensors);
        for (String t : meanTensors.keySet()) if (!all.contains(t)) all.add(t);
        String what = bm.displayName() + ", " + tensors.size() + " captured tensors";
        List<List<String>> groups = over.groups(all, batch, what);
        long total = over.sizes.sampleBytes().values().stream().mapToLong(Long::longValue).sum();
        String why = "one sample's " + all.size() + " captured tensors take " + io.quantcal.kernels.calib.BatchBudget.mib(total)
                + ", more than the memory budget of " + io.quantcal.kernels.calib.BatchBudget.mib(batch.budgetBytes())
                + " per task holds (x" + io.quantcal.kernels.calib.BatchBudget.COPIES + "): capturing them in "
                + groups.size() + " groups, one pass over the data each; ";
        Map<String, TensorStats> stats = new LinkedHashMap<>();
        Map<String, io.quantcal.kernels.calib.SampleChannelSums> sums = new LinkedHashMap<>();
        Result first = null;
        for (int g = 0; g < groups.size(); g++) {
            List<String> group = groups.get(g);
            List<String> gt = tensors.stream().filter(group::contains).toList();
            Map<String, Integer> gm = new LinkedHashMap<>();
            meanTensors.forEach((t, c) -> { if (group.contains(t)) gm.put(t, c); });
            progress.step("activation statistics: " + (g == 0 ? why : "") + "group " + (g + 1) + " of " + groups.size()
                    + " (" + group.size() + " tensors)", (double) g / groups.size());
            // each group captures other tensors, so it opens a session of its own: close the one before (the measuring
            // run's, the last group's) first, or their arenas, each as large as the model's intermediate tensors, add up
            bm.closeSessions();
            Result r = run(samples, bm, input, gt, gm, opts, batch, skipBad, histograms);
            if (first == null) first = r;
            else if (r.partial().samples() != first.partial().samples()) {
                throw new IllegalStateException("calibration samples changed between passes: " + first.partial().samples()
                        + " then " + r.partial().samples());
            }
            stats.putAll(r.partial().stats());
            sums.putAll(r.partial().channelSums());
        }
        return new Tuple2<>(new Result(new ActivationStatistics.Partial(stats, first.partial().samples(), sums),
                first.skipped()), groups.size());
    }

    private static Result run(JavaRDD<Sample> samples, BroadcastModel bm, ModelInputs input,
                              List<String> tensors, Map<String, Integer> meanTensors, RunnerOptions opts,
                              io.quantcal.kernels.calib.BatchBudget batch, boolean skipBad, boolean histograms) {
        LinkedHashMap<String, Integer> sums = new LinkedHashMap<>(meanTensors);
        List<String> captures = new ArrayList<>(tensors);
        for (String t : sums.keySet()) if (!captures.contains(t)) captures.add(t);
        List<Tuple2<Integer, Part>> parts = samples
                .mapPartitionsWithIndex((pid, it) -> TaskMemory.guard("calibrate", "capturing " + tensors.size()
                        + " activation tensors of " + bm.displayName() + " (batches of at most " + batch.maxBatch()
                        + " samples, " + io.quantcal.kernels.calib.BatchBudget.mib(batch.budgetBytes()) + " per task)", () -> {
                    SamplePartitions.Streamed good = SamplePartitions.stream(it, skipBad);
                    String what = bm.displayName() + ", " + tensors.size() + " captured tensors";
                    // the captured tensors are read where ONNX Runtime wrote them, with the tensors to sum per
                    // channel when asked for
                    ActivationStatistics.Partial p;
                    try (var r = bm.lease(captures, opts)) {
                        p = histograms
                                ? ActivationStatistics.collectHistograms(r.runner(), input, new SampleValues(good),
                                        batch, what, tensors, sums)
                                : ActivationStatistics.collectMinMax(r.runner(), input,
                                        new SampleValues(good), batch, what, tensors, sums);
                    } catch (io.quantcal.kernels.calib.CaptureOverBudget e) {
                        // one sample's captures exceed the budget: hand back what each takes, the driver groups them
                        return List.of(new Tuple2<>(pid, new Part(null, List.of(), OverBudget.Sizes.of(e)))).iterator();
                    }
                    return List.of(new Tuple2<>(pid, new Part(p, good.skipped(), null))).iterator();
                }), true).collect();
        List<Tuple2<Integer, Part>> sorted = new ArrayList<>(parts);
        sorted.sort(Comparator.comparing(Tuple2::_1));
        for (var t : sorted) if (t._2().over() != null) throw new OverBudget(t._2().over());
        ActivationStatistics.Partial merged = new ActivationStatistics.Partial(new LinkedHashMap<>(), 0);
        List<String> skipped = new ArrayList<>();
        for (var t : sorted) {
            merged = merged.merge(t._2().partial());
            skipped.addAll(t._2().skipped());
        }
        if (merged.samples() == 0) {
            throw new io.quantcal.job.data.BadSampleException("no usable calibration samples"
                    + (skipped.isEmpty() ? "" : " (" + skipped.size() + " skipped: " + skipped.get(0) + ")"));
        }
        return new Result(merged, skipped);
    }
}
