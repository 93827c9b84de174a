package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.pipeline.LayerReconstruction.LayerTask;
import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.BetaSchedule;
import io.quantcal.kernels.learned.AdaRoundLsqOptimizer;
import io.quantcal.kernels.learned.LearnConfig;
import io.quantcal.kernels.learned.LearnResult;
import io.quantcal.kernels.learned.LsqOptimizer;
import io.quantcal.kernels.learned.QilOptimizer;
import io.quantcal.kernels.onnx.LayerOrder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqExporter;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.kernels.quant.QuantParams;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.SerializableConfiguration;

/**
 * {@code learn}: per quantizable layer, a learned quantizer on the layer's reconstruction problem
 * ({@link LayerReconstruction}, the capture AdaRound uses: one Spark task per layer, the layers of a wave in
 * parallel). {@code learn.method = lsq}: LSQ (Esser et al. 2020) learns the weight steps (per channel when the weights
 * are) and the input-activation step from calibrate's, and with {@code learn.update-weights} fine-tunes W through the
 * straight-through estimator ({@link LsqOptimizer}). {@code learn.method = qil}: QIL (Jung et al. 2019) learns the
 * weights' intervals (c, d, γ) and a non-negative input's (c, d, γ = 1) ({@link QilOptimizer}); run.json reports each
 * layer's pruning and clipping ratios, and the table's MSE is the deployed layer's (see QilOptimizer for where the
 * exported input grid differs from QIL's own).
 *
 * <p>{@code learn.inputs = quantized}: wave k's X comes from the partial QDQ model in which the layers of waves
 * &lt; k are quantized with their learned steps and codes, against the FP network's output. Weight and input rows get
 * method lsq, metric mse (after) and the calibrated parameters' mse as baseline; the integer weights go to the QDQ
 * model (as AdaRound's) and to {@code learn_weights/}. An activation tensor read by several layers keeps the step of
 * its first reader (one Q/DQ pair per tensor).
 */
public final class LearnPass implements Pass {

    public static final String WEIGHTS_TABLE = "learn_weights";

    /** One layer's outcome: the kernel's result and how many columns of X it used. */
    record Learned(LearnResult result, int columns) implements java.io.Serializable {}

    @Override
    public String name() {
        return "learn";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        if (!state.calibrated()) {
            throw new IllegalStateException("pass learn needs calibrated parameters: put calibrate before it in quantcal.pipeline");
        }
        QuantcalConfig cfg = ctx.config();
        QuantcalConfig.Learn l = cfg.learn();
        String method = l.rowMethod();
        boolean qil = l.method().equals("qil");
        boolean withAdaRound = l.adaroundRounding();
        OnnxModel model = state.model();
        List<QuantizableNode> nodes = state.searchableNodes(); // the others keep their calibrated parameters
        ctx.spark().sparkContext().setJobDescription("learn: choose the first " + l.samples() + " calibration samples");
        JavaRDD<Sample> samples = LayerReconstruction.selectSamples(ctx, model, l.samples(), name());
        boolean quantized = l.quantizedInputs();
        // the resume cache: the adaround cache's root and key rules (the samples' content is part of the key)
        AdaRoundPass.CacheKey key = cacheKey(cfg, state, AdaRoundPass.samplesDigest(samples));
        String cacheRoot = io.quantcal.job.QuantcalJob.adaroundCache(ctx.files(), cfg);
        String cacheDir = cacheRoot + "/" + key.hash();
        // adaround's caches in the same root are not learn's to report
        List<String> ignored = AdaRoundPass.ignoredCaches(ctx, cacheRoot, key).stream()
                .filter(x -> !x.matches(".*differs in .*\\bpass\\b.*")).toList();
        if (!ctx.files().exists(cacheDir + "/" + AdaRoundPass.CacheKey.FILE)) {
            ctx.files().mkdirs(cacheDir);
            ctx.files().writeText(cacheDir + "/" + AdaRoundPass.CacheKey.FILE, key.json());
        }
        SerializableConfiguration hadoop = new SerializableConfiguration(ctx.spark().sparkContext().hadoopConfiguration());
        List<String> resumed = new ArrayList<>();
        List<List<QuantizableNode>> waves = quantized ? LayerOrder.waves(model, nodes) : List.of(nodes);
        Map<String, Integer> index = new LinkedHashMap<>();
        Map<String, Integer> waveOf = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) index.put(nodes.get(i).name(), i);
        for (int k = 0; k < waves.size(); k++) for (QuantizableNode n : waves.get(k)) waveOf.put(n.name(), k);
        LearnConfig base = new LearnConfig(l.iterations(), l.learningRate(), l.weightLearningRate(), l.updateWeights(),
                l.batchColumns(), l.seed());
        // lsq+adaround: V's learning rate, λ and β schedule are adaround's (its iteration count is learn's)
        AdaRoundConfig rounding = new AdaRoundConfig(l.iterations(), cfg.adaround().learningRate(), cfg.adaround().lambda(),
                l.batchColumns(), 0.2, 20, 2, BetaSchedule.Decay.COSINE, l.seed());
        LayerReconstruction.Capture capture = new LayerReconstruction.Capture(name(), l.samples(), l.seed(), l.reluOutput(),
                l.batchColumns(), 1);
        ctx.out().printf("learn: %s on %d layers, inputs %s%s (%d iterations each%s)%n", method, nodes.size(), l.inputs(),
                quantized ? " in " + waves.size() + " waves" : "", l.iterations(), l.updateWeights() ? ", weights updated" : "");
        state.printKept(ctx.out(), "learn", "at the calibrated parameters (no layer reconstruction for this op)");

        PipelineState current = state;   // the learned parameters so far: the partial models of later waves use them
        Map<String, int[]> codes = new LinkedHashMap<>();
        Map<String, LearnResult> results = new LinkedHashMap<>();
        Map<String, Integer> columns = new LinkedHashMap<>();
        BroadcastModel fp = null;
        try {
            List<QuantizableNode> earlier = new ArrayList<>();
            for (int k = 0; k < waves.size(); k++) {
                List<LayerTask> tasks = new ArrayList<>();
                List<LayerReconstruction.Solved<Learned>> solved = new ArrayList<>();
                for (QuantizableNode n : waves.get(k)) {
                    String file = LayerCache.file(cacheDir, n.name());
                    if (l.resume() && ctx.files().exists(file)) {
                        solved.add(new LayerReconstruction.Solved<>(index.get(n.name()), 0, LayerCache.read(file, ctx.files().readText(file), Learned.class, "quantcal.learn.resume")));
                        resumed.add(n.name());
                        continue;
                    }
                    TensorQuant w = current.quant().get(n.name() + "/weight");
                    if (w == null) throw new IllegalStateException("learn: no weight parameters for node " + n.name());
                    TensorQuant a = current.quant().get(n.name() + "/activation");
                    tasks.add(new LayerTask(index.get(n.name()), n, model.initializerFloats(n.weight()),
                            n.bias() == null ? null : model.initializerFloats(n.bias()), w.params(),
                            a == null ? null : a.params(), file));
                }
                if (!tasks.isEmpty() && fp == null) fp = BroadcastModel.of(ctx, model, "model");
                OnnxModel inputModel = null;
                if (!tasks.isEmpty() && quantized && !earlier.isEmpty()) {
                    Set<String> names = new LinkedHashSet<>();
                    for (QuantizableNode e : earlier) names.add(e.name());
                    inputModel = QdqExporter.export(model, current.activationParams(), current.weightParams(), codes,
                            ExportPass.internalOptions(cfg), names);
                }
                if (!tasks.isEmpty()) {
                    ctx.spark().sparkContext().setJobDescription("learn wave " + (k + 1) + "/" + waves.size() + ": capture and "
                            + method + " on " + tasks.size() + " layers, " + l.iterations() + " iterations each");
                    solved.addAll(LayerReconstruction.solve(ctx, samples, model, fp, inputModel, tasks, k, capture, (t, copy, p, threads) -> {
                        LearnConfig c = base.withSeed(base.seed() + t.index());
                        Learned out = new Learned(qil ? QilOptimizer.optimize(p, t.input(), c, threads)
                                : withAdaRound ? AdaRoundLsqOptimizer.optimize(p, t.input(), c, rounding, threads)
                                : LsqOptimizer.optimize(p, t.input(), c, threads), p.columns());
                        LayerCache.writeAtomically(new HadoopFiles(hadoop.value()), t.cacheFile(),
                                LayerCache.json(out, "the learn result of layer " + t.node().name()));
                        return out;
                    }));
                    solved.sort(java.util.Comparator.comparingInt(LayerReconstruction.Solved::index));
                }
                Map<String, TensorQuant> quant = new LinkedHashMap<>(current.quant());
                for (LayerReconstruction.Solved<Learned> s : solved) {
                    QuantizableNode n = nodes.get(s.index());
                    LearnResult r = s.result().result();
                    columns.put(n.name(), s.result().columns());
                    results.put(n.name(), r);
                    codes.put(n.weight(), r.integerWeights());
                    TensorQuant w = quant.get(n.name() + "/weight");
                    quant.put(n.name() + "/weight", new TensorQuant(w.tensor(), w.node(), w.opType(), w.role(),
                            w.params().withScales(r.weightScales()), method, "mse", r.mseLearned(), r.mseBaseline()));
                    TensorQuant a = quant.get(n.name() + "/activation");
                    if (a != null && !Double.isNaN(r.inputScale())) {
                        quant.put(n.name() + "/activation", new TensorQuant(a.tensor(), a.node(), a.opType(), a.role(),
                                a.params().withScales(new double[] {r.inputScale()}), method, "mse", r.mseLearned(),
                                r.mseBaseline()));
                    }
                }
                current = current.withQuant(quant).withIntegerWeights(codes);
                ctx.out().printf("learn: wave %d: %d layers learned, %d resumed, inputs from the %s%n", k, tasks.size(),
                        waves.get(k).size() - tasks.size(),
                        inputModel == null ? "FP model" : "model with " + earlier.size() + " earlier layers quantized");
                earlier.addAll(waves.get(k));
            }
        } finally {
            samples.unpersist(false);
            if (fp != null) fp.release();
        }

        Map<String, Object> layers = new LinkedHashMap<>();
        ClusterEstimate cluster = new ClusterEstimate();
        List<Row> rows = new ArrayList<>();
        for (QuantizableNode n : nodes) {
            LearnResult r = results.get(n.name());
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("mse_calibrated", r.mseBaseline());
            m.put("mse_learned", r.mseLearned());
            m.put("kept_calibrated", r.keptInitial());
            TensorQuant w0 = state.quant().get(n.name() + "/weight");
            m.put("weight_step_ratio", ratios(r.weightScales(), w0.params().scale()));
            TensorQuant a0 = state.quant().get(n.name() + "/activation");
            if (a0 != null && !Double.isNaN(r.inputScale())) m.put("input_step_ratio", r.inputScale() / a0.params().scale(0));
            if (r.qil() != null) {
                LearnResult.QilIntervals q = r.qil();
                m.put("weights_pruned", q.weightsPruned());
                m.put("weights_clipped", q.weightsClipped());
                m.put("gamma", Arrays.stream(q.gamma()).boxed().toList());
                if (!Double.isNaN(q.inputC())) {
                    m.put("inputs_pruned", q.inputsPruned());
                    m.put("inputs_clipped", q.inputsClipped());
                    m.put("input_prune_threshold", q.inputC() - q.inputD());
                    m.put("input_clip_threshold", q.inputC() + q.inputD());
                }
                m.put("mse_qil", q.mseQil());
            }
            m.put("iterations", r.iterations());
            m.put("ms", r.nanos() / 1_000_000);
            m.put("columns", columns.get(n.name()));
            cluster.add(quantized ? waveOf.get(n.name()) : 0, r.nanos());
            if (quantized) m.put("wave", waveOf.get(n.name()));
            m.put("resumed", resumed.contains(n.name()));
            layers.put(n.name(), m);
            rows.add(RowFactory.create(n.weight(), Arrays.stream(r.shape()).boxed().toList(),
                    Arrays.stream(r.integerWeights()).boxed().toList()));
            ctx.out().printf("  %-24s mse calibrated %.4g -> %s %.4g%s (%d columns, %d ms)%n", n.name(), r.mseBaseline(),
                    method, r.mseLearned(), r.keptInitial() ? " (calibrated kept)" : "", columns.get(n.name()),
                    r.nanos() / 1_000_000);
        }
        ctx.spark().createDataFrame(rows, AdaRoundPass.WEIGHTS_SCHEMA).coalesce(1).write()
                .parquet(ctx.output().resolve(WEIGHTS_TABLE));

        Map<String, Object> s = new LinkedHashMap<>();
        s.put("method", method);
        s.put("inputs", l.inputs());
        if (quantized) s.put("waves", waves.size());
        s.put("samples", l.samples());
        s.put("iterations", l.iterations());
        s.put("learning_rate", l.learningRate());
        s.put("update_weights", l.updateWeights());
        s.put("rounding", l.rounding());
        if (withAdaRound) {
            s.put("adaround_learning_rate", cfg.adaround().learningRate());
            s.put("adaround_lambda", cfg.adaround().lambda());
        }
        if (l.updateWeights()) s.put("weight_learning_rate", l.weightLearningRate());
        s.put("cache", cacheDir);
        s.put("caches_ignored", ignored);
        s.put("layers_learned", nodes.size() - resumed.size());
        s.put("layers_resumed", resumed.size());
        s.put("cluster_estimate", cluster.summary());
        ctx.out().println(cluster.line(name()));
        s.put("weights_table", ctx.output().finalPath(WEIGHTS_TABLE));
        s.put("layers", layers);
        return current.withSummary(name(), s);
    }

    /**
     * The cache key: the quantcal version, the model's content, the samples (ids and content), every learn setting,
     * every weight and activation parameter the layers start from, and the export options (the partial models of
     * quantized inputs are exported with them). "pass = learn" keeps it apart from adaround's keys in the same root.
     */
    static AdaRoundPass.CacheKey cacheKey(QuantcalConfig cfg, PipelineState state, String samples) {
        Map<String, String> parts = new LinkedHashMap<>();
        parts.put("quantcal_version", io.quantcal.job.QuantcalJob.version());
        parts.put("pass", "learn");
        parts.put("cache_format", "learn-json-1");
        parts.put("model_sha256", state.model().sha256());
        parts.put("samples", samples);
        parts.put("learn_settings", AdaRoundPass.sha256(cfg.learn().toString()));
        if (cfg.learn().adaroundRounding()) {
            // lsq+adaround learns V with adaround's learning rate and λ
            parts.put("adaround_rounding", AdaRoundPass.sha256(cfg.adaround().learningRate() + "|" + cfg.adaround().lambda()));
        }
        StringBuilder b = new StringBuilder(ExportPass.internalOptions(cfg).toString()).append('|');
        for (TensorQuant t : state.quant().values()) {
            QuantParams q = t.params();
            b.append(t.key()).append(':').append(t.tensor()).append(Arrays.toString(q.scale()))
                    .append(Arrays.toString(q.zeroPoint())).append(q.qmin()).append(',').append(q.qmax()).append(',')
                    .append(q.axis()).append('|');
        }
        parts.put("parameters", AdaRoundPass.sha256(b.toString()));
        return new AdaRoundPass.CacheKey(parts);
    }

    /** Learned / calibrated step, per channel, rounded for reading. */
    private static List<Double> ratios(double[] learned, double[] calibrated) {
        List<Double> out = new ArrayList<>();
        for (int c = 0; c < learned.length; c++) out.add(Math.round(learned[c] / calibrated[c] * 1e4) / 1e4);
        return out;
    }
}
