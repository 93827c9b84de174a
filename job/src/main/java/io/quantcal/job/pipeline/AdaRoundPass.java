package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.kernels.adaround.AdaRoundConfig;
import io.quantcal.kernels.adaround.AdaRoundOptimizer;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.adaround.AdaRoundResult;
import io.quantcal.kernels.adaround.BetaSchedule;
import io.quantcal.kernels.calib.Batches;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;
import org.nd4j.linalg.factory.Nd4j;
import scala.Tuple2;

/**
 * {@code adaround} (Nagel et al. 2020): chooses the rounding of every quantizable layer's weights with the
 * calibrated scales. Each layer's FP input X is captured in Spark over the first {@code adaround.samples}
 * calibration samples (by id); then every layer's problem is one Spark task, all in parallel, so the wall time
 * approaches the slowest layer. A task writes its result to {@code <output.path>.adaround-cache/<hash>/} as soon
 * as it ends (temporary file, then rename), outside the atomic output directory, so a rerun with
 * {@code adaround.resume} skips the layers a killed run finished. Weight rows get method adaround, metric mse
 * (after) and the round-to-nearest mse as baseline; the codes go to the QDQ model and to {@code adaround_weights/}.
 */
public final class AdaRoundPass implements Pass {

    public static final String WEIGHTS_TABLE = "adaround_weights";
    /** Conv layers keep at most this many im2col patch columns (a seeded subsample), bounding task memory. */
    public static final int MAX_COLUMNS = 50_000;

    public static final StructType WEIGHTS_SCHEMA = new StructType(new StructField[] {
            DataTypes.createStructField("tensor", DataTypes.StringType, false),
            DataTypes.createStructField("shape", DataTypes.createArrayType(DataTypes.LongType, false), false),
            DataTypes.createStructField("values", DataTypes.createArrayType(DataTypes.IntegerType, false), false)});

    @Override
    public String name() {
        return "adaround";
    }

    /** One layer's inputs to a task: plain arrays, no model. */
    record LayerTask(int index, QuantizableNode node, float[] weight, float[] bias, QuantParams params, String cacheFile)
            implements Serializable {}

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
        List<QuantizableNode> nodes = state.nodes();
        String cacheDir = cfg.outputPath().replaceAll("/+$", "") + ".adaround-cache/" + configHash(cfg, state);

        List<LayerTask> tasks = new ArrayList<>();
        Map<String, Outcome> outcomes = new LinkedHashMap<>();
        int resumed = 0;
        for (int i = 0; i < nodes.size(); i++) {
            QuantizableNode n = nodes.get(i);
            String file = cacheDir + "/" + URLEncoder.encode(n.name(), StandardCharsets.UTF_8) + ".bin";
            if (ar.resume() && ctx.files().exists(file)) {
                outcomes.put(n.name(), read(file, ctx.files().readBytes(file)));
                resumed++;
                continue;
            }
            TensorQuant w = state.quant().get(n.name() + "/weight");
            if (w == null) throw new IllegalStateException("adaround: no weight parameters for node " + n.name());
            tasks.add(new LayerTask(i, n, model.initializerFloats(n.weight()),
                    n.bias() == null ? null : model.initializerFloats(n.bias()), w.params(), file));
        }
        ctx.out().printf("adaround: %d layers, %d resumed from %s, %d to optimize (%d iterations each)%n",
                nodes.size(), resumed, cacheDir, tasks.size(), ar.iterations());

        if (!tasks.isEmpty()) {
            Map<String, FloatTensor> captured = capture(ctx, model,
                    tasks.stream().map(t -> t.node().input()).distinct().toList());
            JavaSparkContext jsc = JavaSparkContext.fromSparkContext(ctx.spark().sparkContext());
            Broadcast<Map<String, FloatTensor>> inputs = jsc.broadcast(captured);
            SerializableConfiguration hadoop = new SerializableConfiguration(ctx.spark().sparkContext().hadoopConfiguration());
            AdaRoundConfig base = new AdaRoundConfig(ar.iterations(), ar.learningRate(), ar.lambda(), ar.batchColumns(),
                    0.2, 20, 2, BetaSchedule.Decay.COSINE, ar.seed());
            boolean relu = ar.reluOutput();
            List<Tuple2<Integer, Outcome>> done = new ArrayList<>(jsc.parallelize(tasks, tasks.size()).map(t -> {
                AdaRoundProblem p = problem(t, inputs.value().get(t.node().input()), relu, base.seed());
                AdaRoundResult r = AdaRoundOptimizer.optimize(p, base.withSeed(base.seed() + t.index()));
                Outcome o = new Outcome(t.node().name(), r, p.columns());
                writeAtomically(new HadoopFiles(hadoop.value()), t.cacheFile(), o);
                return new Tuple2<>(t.index(), o);
            }).collect());
            inputs.destroy();
            done.sort(Comparator.comparing(Tuple2::_1));
            for (var d : done) outcomes.put(d._2().layer(), d._2());
        }

        Map<String, TensorQuant> quant = new LinkedHashMap<>(state.quant());
        Map<String, int[]> codes = new LinkedHashMap<>();
        Map<String, Object> layers = new LinkedHashMap<>();
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
            l.put("resumed", tasks.stream().noneMatch(t -> t.node().name().equals(n.name())));
            layers.put(n.name(), l);
            rows.add(RowFactory.create(n.weight(), Arrays.stream(r.shape()).boxed().toList(),
                    Arrays.stream(r.integerWeights()).boxed().toList()));
            ctx.out().printf("  %-24s mse round-to-nearest %.4g -> adaround %.4g (%d columns, %d ms)%n", n.name(),
                    r.mseRoundToNearest(), r.mseAdaRound(), o.columns(), r.nanos() / 1_000_000);
        }
        ctx.spark().createDataFrame(rows, WEIGHTS_SCHEMA).coalesce(1).write().parquet(ctx.output().resolve(WEIGHTS_TABLE));

        Map<String, Object> s = new LinkedHashMap<>();
        s.put("samples", ar.samples());
        s.put("iterations", ar.iterations());
        s.put("learning_rate", ar.learningRate());
        s.put("lambda", ar.lambda());
        s.put("cache", cacheDir);
        s.put("layers_optimized", tasks.size());
        s.put("layers_resumed", resumed);
        s.put("weights_table", ctx.output().finalPath(WEIGHTS_TABLE));
        s.put("layers", layers);
        return state.withQuant(quant).withIntegerWeights(codes).withSummary(name(), s);
    }

    /**
     * Each listed tensor over the first {@code adaround.samples} good calibration samples, stacked in id order.
     */
    static Map<String, FloatTensor> capture(RunContext ctx, OnnxModel model, List<String> tensors) {
        QuantcalConfig cfg = ctx.config();
        int partitions = SampleSets.partitions(ctx.spark(), cfg.calibration());
        var samples = SampleSets.load(ctx.spark(), cfg, cfg.calibration(), partitions).filter(Sample::ok).cache();
        try {
            List<Long> ids = samples.map(Sample::id).takeOrdered(cfg.adaround().samples());
            if (ids.isEmpty()) throw new io.quantcal.job.data.BadSampleException("adaround: no usable calibration samples");
            long last = ids.get(ids.size() - 1);
            CalibratePass.ModelInput input = CalibratePass.ModelInput.of(model, cfg);
            BroadcastModel bm = BroadcastModel.of(ctx.spark(), model, "model");
            boolean skipBad = cfg.calibration().skipBadSamples();
            RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
            int batch = cfg.calibration().batchSize();
            List<Tuple2<Long, FloatTensor[]>> per = new ArrayList<>(samples.filter(x -> x.id() <= last)
                    .mapPartitions(it -> {
                        List<Sample> good = SamplePartitions.split(it, skipBad).good();
                        ModelRunner runner = bm.runner(tensors, opts);
                        List<Tuple2<Long, FloatTensor[]>> out = new ArrayList<>();
                        for (int from = 0; from < good.size(); from += batch) {
                            List<Sample> b = good.subList(from, Math.min(good.size(), from + batch));
                            Map<String, FloatTensor> o = runner.run(Map.of(input.name(), Batches.stack(input.name(),
                                    b.stream().map(Sample::values).toList(), input.sampleShape())));
                            for (int k = 0; k < b.size(); k++) {
                                FloatTensor[] one = new FloatTensor[tensors.size()];
                                for (int t = 0; t < one.length; t++) one[t] = o.get(tensors.get(t)).batch(k, k + 1);
                                out.add(new Tuple2<>(b.get(k).id(), one));
                            }
                        }
                        return out.iterator();
                    }).collect());
            per.sort(Comparator.comparing(Tuple2::_1));
            Map<String, FloatTensor> stacked = new LinkedHashMap<>();
            for (int t = 0; t < tensors.size(); t++) {
                final int ti = t;
                stacked.put(tensors.get(t), FloatTensor.concat(tensors.get(t), per.stream().map(x -> x._2()[ti]).toList()));
            }
            ctx.out().printf("adaround: captured %d layer inputs over %d samples%n", tensors.size(), per.size());
            return stacked;
        } finally {
            samples.unpersist(false);
        }
    }

    /** The layer's problem from its captured input; Conv patch columns beyond {@link #MAX_COLUMNS} are subsampled. */
    static AdaRoundProblem problem(LayerTask t, FloatTensor x, boolean reluOutput, long seed) {
        QuantizableNode n = t.node();
        boolean relu = reluOutput && "Relu".equals(n.activation());
        var xa = Nd4j.create(x.data(), x.shape());
        var w = Nd4j.create(t.weight(), n.weightShape());
        var b = t.bias() == null ? null : Nd4j.create(t.bias(), new long[] {t.bias().length});
        AdaRoundProblem p = switch (n.opType()) {
            case "Conv" -> AdaRoundProblem.conv(n.name(), xa, w, b,
                    new ConvSpec(n.strides(), n.pads(), n.dilations(), n.group()), t.params(), relu);
            case "Gemm" -> AdaRoundProblem.gemm(n.name(), xa, w, b, n.transB(), t.params(), relu);
            case "MatMul" -> AdaRoundProblem.matmul(n.name(), xa, w, b, t.params(), relu);
            default -> throw new IllegalArgumentException("adaround: node " + n.name() + " has unsupported op " + n.opType());
        };
        return p.columns() <= MAX_COLUMNS ? p : subsample(p, MAX_COLUMNS, seed ^ n.name().hashCode());
    }

    /** The same problem on {@code keep} columns of X chosen by a seeded shuffle, kept in their original order. */
    static AdaRoundProblem subsample(AdaRoundProblem p, int keep, long seed) {
        int[] idx = new int[p.columns()];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        Random rnd = new Random(seed);
        for (int i = 0; i < keep; i++) {
            int j = i + rnd.nextInt(idx.length - i);
            int tmp = idx[i];
            idx[i] = idx[j];
            idx[j] = tmp;
        }
        int[] chosen = Arrays.copyOf(idx, keep);
        Arrays.sort(chosen);
        int row = p.groups() * p.depth();
        float[] in = p.inputs();
        float[] sub = new float[keep * row];
        for (int i = 0; i < keep; i++) System.arraycopy(in, chosen[i] * row, sub, i * row, row);
        float[] target = null;
        if (p.target() != null) {
            target = new float[keep * p.outChannels()];
            for (int i = 0; i < keep; i++) System.arraycopy(p.target(), chosen[i] * p.outChannels(), target, i * p.outChannels(), p.outChannels());
        }
        return new AdaRoundProblem(p.layer(), p.weightShape(), p.transposedWeight(), p.weight(), p.outChannels(), p.depth(),
                p.groups(), p.bias(), p.scale(), p.zeroPoint(), p.qmin(), p.qmax(), sub, keep, target, p.reluOutput());
    }

    /** Identifies what a cached layer result depends on: model, weight parameters, data selection, settings. */
    static String configHash(QuantcalConfig cfg, PipelineState state) {
        StringBuilder b = new StringBuilder();
        b.append(state.model().sha256()).append('|').append(cfg.adaround()).append('|');
        var c = cfg.calibration();
        b.append(c.path()).append('|').append(c.format()).append('|').append(c.limit()).append('|').append(c.seed()).append('|');
        var pp = cfg.preprocess();
        b.append(pp.channels()).append(pp.resize()).append(pp.width()).append(pp.height()).append(pp.scale())
                .append(Arrays.toString(pp.mean())).append(Arrays.toString(pp.std())).append(pp.layout()).append('|');
        for (TensorQuant t : state.quant().values()) {
            if (!t.role().equals("weight")) continue;
            QuantParams q = t.params();
            b.append(t.key()).append(Arrays.toString(q.scale())).append(Arrays.toString(q.zeroPoint()))
                    .append(q.qmin()).append(',').append(q.qmax()).append(',').append(q.axis()).append('|');
        }
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(b.toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d, 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Temporary file, then rename: a reader never sees a partial result. */
    static void writeAtomically(HadoopFiles files, String path, Outcome o) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bos)) {
            out.writeObject(o);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serialize the AdaRound result of " + o.layer(), e);
        }
        String tmp = path + ".tmp-" + Long.toHexString(System.nanoTime());
        files.writeBytes(tmp, bos.toByteArray());
        if (files.exists(path)) files.delete(path);
        files.rename(tmp, path);
    }

    static Outcome read(String path, byte[] bytes) {
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes))) {
            return (Outcome) in.readObject();
        } catch (IOException | ClassNotFoundException | ClassCastException e) {
            throw new IllegalStateException("cannot read the cached AdaRound result " + path
                    + " (delete it, or set quantcal.adaround.resume = false): " + e.getMessage(), e);
        }
    }
}
