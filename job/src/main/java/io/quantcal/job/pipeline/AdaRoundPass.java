package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.pipeline.LayerReconstruction.LayerTask;
import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.adaround.AdaRoundResult;
import io.quantcal.kernels.adaround.BetaSchedule;
import io.quantcal.kernels.onnx.LayerOrder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqExporter;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;
import scala.Tuple2;

/**
 * {@code adaround} (Nagel et al. 2020): chooses the rounding of every quantizable layer's weights with the
 * calibrated scales. The first {@code adaround.samples} calibration samples (by id) run through the model in
 * Spark; each partition turns every sample's captured layer inputs into that sample's columns of X (conv:
 * im2col patches, a per-sample seeded subsample), keyed by layer; a partitioner with one partition per layer
 * brings each layer's columns to one task, which sorts them by sample id, builds the layer's problem and solves
 * it. So every layer is one Spark task with its own data, all layers of a wave in parallel, the driver never
 * holds the inputs, and the result does not depend on the partitioning. That capture is {@link LayerReconstruction}'s,
 * shared with the learn pass and stochastic rounding.
 *
 * <p>{@code adaround.inputs = fp}: X from the FP network, one wave of all layers (eq. 25). {@code quantized}: the
 * layers go in {@link LayerOrder#waves waves}; wave k takes X̃ from the partial QDQ model in which the layers of
 * waves &lt; k are quantized (activation parameters from the state, weights as the AdaRound codes already found)
 * and the target act(W X + b) from the FP network's X of the same samples and columns (eq. 26).
 *
 * <p>A task writes its result to {@code <output.path>.adaround-cache/<hash>/} as soon as it ends (temporary
 * file, then rename), outside the atomic output directory, so a rerun with {@code adaround.resume} skips the
 * layers a killed run finished. Weight rows get method adaround, metric mse (after) and the round-to-nearest
 * mse as baseline, both against the target; the codes go to the QDQ model and to {@code adaround_weights/}.
 */
public final class AdaRoundPass implements Pass {

    public static final String WEIGHTS_TABLE = "adaround_weights";
    /** Conv layers keep at most this many im2col patch columns in all (MAX_COLUMNS / samples per sample), bounding task memory. */
    public static final int MAX_COLUMNS = LayerReconstruction.MAX_COLUMNS;

    public static final StructType WEIGHTS_SCHEMA = new StructType(new StructField[] {
            DataTypes.createStructField("tensor", DataTypes.StringType, false),
            DataTypes.createStructField("shape", DataTypes.createArrayType(DataTypes.LongType, false), false),
            DataTypes.createStructField("values", DataTypes.createArrayType(DataTypes.IntegerType, false), false)});

    @Override
    public String name() {
        return "adaround";
    }

    /** One layer's outcome, as cached: the kernel's result and how many columns of X it used. */
    record Outcome(String layer, AdaRoundResult result, int columns) implements Serializable {}

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        if (!state.calibrated()) {
            throw new IllegalStateException("pass adaround needs weight scales: put calibrate before it in quantcal.pipeline");
        }
        QuantcalConfig cfg = ctx.config();
        QuantcalConfig.AdaRound ar = cfg.adaround();
        OnnxModel model = state.model();
        List<QuantizableNode> nodes = state.searchableNodes(); // the others keep their calibrated weights (kept_as_calibrated)
        // the samples come first: their content is part of the cache key, so a cache never returns stale layers
        ctx.progress().step("adaround: choose and hash the first " + ar.samples() + " calibration samples", 0);
        JavaRDD<Sample> samples = selectSamples(ctx, model);
        CacheKey key = CacheKey.of(cfg, state, samplesDigest(samples));
        String cacheRoot = io.quantcal.job.QuantcalJob.adaroundCache(ctx.files(), cfg);
        String cacheDir = cacheRoot + "/" + key.hash();
        List<String> ignored = ignoredCaches(ctx, cacheRoot, key);
        if (!ctx.files().exists(cacheDir + "/" + CacheKey.FILE)) {
            ctx.files().mkdirs(cacheDir);
            ctx.files().writeText(cacheDir + "/" + CacheKey.FILE, key.json());
        }
        boolean quantized = ar.quantizedInputs();
        List<List<QuantizableNode>> waves = quantized ? LayerOrder.waves(model, nodes) : List.of(nodes);
        Map<String, Integer> index = new LinkedHashMap<>();
        Map<String, Integer> waveOf = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) index.put(nodes.get(i).name(), i);
        for (int k = 0; k < waves.size(); k++) for (QuantizableNode n : waves.get(k)) waveOf.put(n.name(), k);

        Map<String, Outcome> outcomes = new LinkedHashMap<>();
        List<String> optimized = new ArrayList<>();
        int resumed = 0;
        ctx.out().printf("adaround: %d layers, inputs %s%s, cache %s (%d iterations each)%n", nodes.size(), ar.inputs(),
                quantized ? " in " + waves.size() + " waves" : "", cacheDir, ar.iterations());
        for (String line : ignored) ctx.out().println("adaround: " + line);
        state.printKept(ctx.out(), "adaround", "rounded to nearest at the calibrated scales (no layer reconstruction for"
                + " this op)");
        BroadcastModel fp = null;
        try {
            List<QuantizableNode> earlier = new ArrayList<>();
            for (int k = 0; k < waves.size(); k++) {
                List<LayerTask> tasks = new ArrayList<>();
                for (QuantizableNode n : waves.get(k)) {
                    String file = LayerCache.file(cacheDir, n.name());
                    if (ar.resume() && ctx.files().exists(file)) {
                        outcomes.put(n.name(), LayerCache.read(file, ctx.files().readText(file), Outcome.class,
                                "quantcal.adaround.resume"));
                        resumed++;
                        continue;
                    }
                    TensorQuant w = state.quant().get(n.name() + "/weight");
                    if (w == null) throw new IllegalStateException("adaround: no weight parameters for node " + n.name());
                    tasks.add(new LayerTask(index.get(n.name()), n, model.initializerFloats(n.weight()),
                            n.bias() == null ? null : model.initializerFloats(n.bias()), w.params(), null, file));
                }
                if (!tasks.isEmpty()) {
                    if (fp == null) fp = BroadcastModel.of(ctx, model, "model"); // shipped once for every wave
                    // wave 0 reads the FP network in both forms; later waves the network with waves < k quantized
                    OnnxModel inputModel = null;
                    if (quantized && !earlier.isEmpty()) {
                        Map<String, int[]> codes = new LinkedHashMap<>();
                        Set<String> names = new LinkedHashSet<>();
                        for (QuantizableNode e : earlier) {
                            codes.put(e.weight(), outcomes.get(e.name()).result().integerWeights());
                            names.add(e.name());
                        }
                        inputModel = QdqExporter.export(model, state.activationParams(), state.weightParams(), codes,
                                ExportPass.internalOptions(cfg), names);
                    }
                    ctx.out().printf("adaround: wave %d: %d layers to optimize (%d resumed), inputs from the %s%n", k,
                            tasks.size(), waves.get(k).size() - tasks.size(),
                            inputModel == null ? "FP model" : "model with " + earlier.size() + " earlier layers quantized");
                    ctx.progress().step("adaround wave " + (k + 1) + "/" + waves.size() + ": capture and solve "
                            + tasks.size() + " layers, " + ar.iterations() + " iterations each", (double) k / waves.size());
                    for (Tuple2<Integer, Outcome> d : solve(ctx, samples, model, fp, inputModel, tasks, k)) {
                        outcomes.put(d._2().layer(), d._2());
                        optimized.add(d._2().layer());
                    }
                }
                earlier.addAll(waves.get(k));
            }
        } finally {
            samples.unpersist(false);
            if (fp != null) fp.release();
        }

        Map<String, TensorQuant> quant = new LinkedHashMap<>(state.quant());
        Map<String, int[]> codes = new LinkedHashMap<>();
        Map<String, Object> layers = new LinkedHashMap<>();
        long totalFlops = 0, totalNanos = 0;
        ClusterEstimate cluster = new ClusterEstimate();
        List<Row> rows = new ArrayList<>();
        for (QuantizableNode n : nodes) {
            Outcome o = outcomes.get(n.name());
            AdaRoundResult r = o.result();
            TensorQuant w = quant.get(n.name() + "/weight");
            quant.put(n.name() + "/weight", new TensorQuant(w.tensor(), w.node(), w.opType(), w.role(), w.params(),
                    "adaround", "mse", r.mseAdaRound(), r.mseRoundToNearest()));
            codes.put(n.weight(), r.integerWeights());
            Map<String, Object> l = new LinkedHashMap<>();
            l.put("mse_round_to_nearest", r.mseRoundToNearest());
            l.put("mse_adaround", r.mseAdaRound());
            l.put("iterations", r.iterations());
            l.put("ms", r.nanos() / 1_000_000);
            l.put("columns", o.columns());
            long flops = AdaRoundOptimizer.flops(n.outputChannels(), LayerOp.of(n).reductionLength(n.as2d().weightShape()),
                    o.columns(), ar.batchColumns(), r.iterations());
            l.put("work_gflop", flops / 1e9);
            l.put("gflop_per_s", r.nanos() <= 0 ? 0 : flops / (double) r.nanos());
            totalFlops += flops;
            totalNanos += r.nanos();
            cluster.add(quantized ? waveOf.get(n.name()) : 0, r.nanos());
            if (quantized) l.put("wave", waveOf.get(n.name()));
            l.put("resumed", !optimized.contains(n.name()));
            layers.put(n.name(), l);
            rows.add(RowFactory.create(n.weight(), Arrays.stream(r.shape()).boxed().toList(),
                    Arrays.stream(r.integerWeights()).boxed().toList()));
            ctx.out().printf("  %-24s mse round-to-nearest %.4g -> adaround %.4g (%d columns, %d ms, %.1f GFLOP/s)%n", n.name(),
                    r.mseRoundToNearest(), r.mseAdaRound(), o.columns(), r.nanos() / 1_000_000,
                    r.nanos() <= 0 ? 0 : flops / (double) r.nanos());
        }
        ctx.spark().createDataFrame(rows, WEIGHTS_SCHEMA).coalesce(1).write().parquet(ctx.output().resolve(WEIGHTS_TABLE));

        Map<String, Object> s = new LinkedHashMap<>();
        s.put("inputs", ar.inputs());
        if (quantized) s.put("waves", waves.size());
        s.put("samples", ar.samples());
        s.put("iterations", ar.iterations());
        s.put("learning_rate", ar.learningRate());
        s.put("lambda", ar.lambda());
        s.put("cache", cacheDir);
        s.put("caches_ignored", ignored);
        s.put("layers_optimized", optimized.size());
        s.put("kept_as_calibrated", state.keptAsCalibrated());
        s.put("layers_resumed", resumed);
        // the optimizers' gemm work (resumed layers included, at the time they took when solved), per task (one core)
        s.put("work_gflop", totalFlops / 1e9);
        s.put("task_s", totalNanos / 1e9);
        s.put("gflop_per_s_per_task", totalNanos <= 0 ? 0 : totalFlops / (double) totalNanos);
        s.put("cluster_estimate", cluster.summary());
        ctx.out().println(cluster.line(name()));
        s.put("weights_table", ctx.output().finalPath(WEIGHTS_TABLE));
        s.put("layers", layers);
        return state.withQuant(quant).withIntegerWeights(codes).withSummary(name(), s);
    }

    /** The first {@code adaround.samples} good calibration samples by id, cached (only ids reach the driver). */
    static JavaRDD<Sample> selectSamples(RunContext ctx, OnnxModel model) {
        return LayerReconstruction.selectSamples(ctx, model, ctx.config().adaround().samples(), "adaround");
    }

    /**
     * One wave's layers through {@link LayerReconstruction}: one task per layer runs the AdaRound optimizer and
     * writes its result to the cache as soon as it ends.
     *
     * @param model      the FP model, {@code fp} its broadcast
     * @param quantized  null: X from the FP model, target act(W X + b) of X itself (eq. 25, and the first wave of
     *                   eq. 26); else the partly quantized model whose inputs are X, against the FP target (eq. 26)
     */
    static List<Tuple2<Integer, Outcome>> solve(RunContext ctx, JavaRDD<Sample> samples, OnnxModel model, BroadcastModel fp,
                                                 OnnxModel quantized, List<LayerTask> tasks, int wave) {
        QuantcalConfig.AdaRound ar = ctx.config().adaround();
        SerializableConfiguration hadoop = new SerializableConfiguration(ctx.spark().sparkContext().hadoopConfiguration());
        AdaRoundConfig base = new AdaRoundConfig(ar.iterations(), ar.learningRate(), ar.lambda(), ar.batchColumns(),
                0.2, 20, 2, BetaSchedule.Decay.COSINE, ar.seed());
        LayerReconstruction.Capture capture = new LayerReconstruction.Capture("adaround", ar.samples(), ar.seed(),
                ar.reluOutput(), base.batchColumns(), 1);
        List<Tuple2<Integer, Outcome>> done = new ArrayList<>();
        for (LayerReconstruction.Solved<Outcome> s : LayerReconstruction.solve(ctx, samples, model, fp, quantized, tasks, wave,
                capture, (t, copy, p, threads) -> {
                    AdaRoundResult r = AdaRoundOptimizer.optimize(p, base.withSeed(base.seed() + t.index()), threads);
                    Outcome o = new Outcome(t.node().name(), r, p.columns());
                    LayerCache.writeAtomically(new HadoopFiles(hadoop.value()), t.cacheFile(),
                            LayerCache.json(o, "the AdaRound result of layer " + o.layer()));
                    return o;
                })) {
            done.add(new Tuple2<>(s.index(), s.result()));
        }
        ctx.out().printf("adaround: wave %d: %d layers solved, one task each%n", wave, done.size());
        return done;
    }

    /**
     * What a cached layer result depends on, in parts: the quantcal version, the model's content, the samples used
     * (ids and content), and every setting that changes a layer's result. The cache directory is named by the hash
     * of all parts; {@value #FILE} in it holds the parts, so a cache for other inputs can be reported by what differs.
     */
    record CacheKey(Map<String, String> parts) {
        static final String FILE = "key.json";

        static CacheKey of(QuantcalConfig cfg, PipelineState state, String samples) {
            Map<String, String> parts = new LinkedHashMap<>();
            parts.put("quantcal_version", io.quantcal.job.QuantcalJob.version());
            parts.put("model_sha256", state.model().sha256());
            parts.put("samples", samples);
            // preprocessing needs no part of its own: the samples' digest is of the decoded, preprocessed values
            parts.put("adaround_settings", sha256(cfg.adaround().toString()));
            StringBuilder b = new StringBuilder();
            for (TensorQuant t : state.quant().values()) {
                if (!t.role().equals("weight")) continue;
                QuantParams q = t.params();
                b.append(t.key()).append(Arrays.toString(q.scale())).append(Arrays.toString(q.zeroPoint()))
                        .append(q.qmin()).append(',').append(q.qmax()).append(',').append(q.axis()).append('|');
            }
            parts.put("weight_parameters", sha256(b.toString()));
            if (cfg.adaround().quantizedInputs()) {
                // X̃ comes from the partly quantized model: its activation parameters and export options count too
                b.setLength(0);
                b.append(ExportPass.internalOptions(cfg)).append('|');
                for (var e : state.activationParams().entrySet()) {
                    QuantParams q = e.getValue();
                    b.append(e.getKey()).append(Arrays.toString(q.scale())).append(Arrays.toString(q.zeroPoint()))
                            .append(q.qmin()).append(',').append(q.qmax()).append('|');
                }
                parts.put("activation_parameters", sha256(b.toString()));
            }
            return new CacheKey(parts);
        }

        String hash() {
            return sha256(parts.toString()).substring(0, 16);
        }

        String json() {
            try {
                return new com.fasterxml.jackson.databind.ObjectMapper()
                        .enable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT).writeValueAsString(parts) + "\n";
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @SuppressWarnings("unchecked")
        static Map<String, String> parse(String json) {
            try {
                return new com.fasterxml.jackson.databind.ObjectMapper().readValue(json, LinkedHashMap.class);
            } catch (IOException e) {
                return Map.of();
            }
        }
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The chosen samples' ids and values (every model input's), hashed per sample where they are and combined in id
     * order on the driver.
     */
    static String samplesDigest(JavaRDD<Sample> samples) {
        List<String> each = new ArrayList<>(samples.map(x -> {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            x.inputs().digest(d);
            return String.format("%012d:", x.id()) + HexFormat.of().formatHex(d.digest());
        }).collect());
        each.sort(null);
        return each.size() + " samples, " + sha256(String.join(",", each));
    }

    /** Caches beside this one that were made for other inputs or settings: ignored, and said why. */
    static List<String> ignoredCaches(RunContext ctx, String root, CacheKey key) {
        List<String> out = new ArrayList<>();
        if (!ctx.files().isDirectory(root)) return out;
        for (var st : ctx.files().list(root)) {
            if (!st.isDirectory() || st.getPath().getName().equals(key.hash())) continue;
            String f = st.getPath() + "/" + CacheKey.FILE;
            Map<String, String> other = ctx.files().exists(f) ? CacheKey.parse(ctx.files().readText(f)) : Map.of();
            List<String> differ = new ArrayList<>();
            for (String k : key.parts().keySet()) if (!key.parts().get(k).equals(other.get(k))) differ.add(k);
            out.add("cache " + st.getPath() + " ignored: it was made for other inputs (" + (other.isEmpty()
                    ? "no readable " + CacheKey.FILE : "differs in " + String.join(", ", differ)) + ")");
        }
        return out;
    }
}
