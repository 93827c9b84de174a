package io.quantcal.job.pipeline;

import io.quantcal.job.config.ConfigException;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.kernels.easyquant.AlternatingSearch;
import io.quantcal.kernels.easyquant.CandidateBlock;
import io.quantcal.kernels.easyquant.CandidateEvaluation;
import io.quantcal.kernels.easyquant.CandidateScores;
import io.quantcal.kernels.easyquant.Int16Accumulation;
import io.quantcal.kernels.easyquant.LayerCapture;
import io.quantcal.kernels.easyquant.LayerProblem;
import io.quantcal.kernels.easyquant.OutputPositions;
import io.quantcal.kernels.easyquant.SearchSide;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.onnx.LayerOrder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqExporter;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.KernelThreads;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * {@code easyquant} (Wu et al. 2020): per quantizable layer, the weight and input-activation scales that
 * maximise the mean cosine of the layer's FP output and its quantized output.
 *
 * <p>Modes. {@code parallel}: every searched layer starts from the FP network's inputs, all at once.
 * {@code sequential}: the paper's greedy order. The layers fall into dependency waves ({@link LayerOrder#waves});
 * a wave's inputs X are captured from the partial QDQ model in which every layer of the earlier waves is quantized
 * with its searched (or, if not searched, calibrated) parameters, while O stays the FP network's output. A layer
 * of wave k so sees exactly the input it would see with all node-order-earlier layers quantized; the layers of a
 * wave are searched together. In both modes a layer's problem is the same code, so the modes differ only
 * through X.
 *
 * <p>Capture: the first {@code quantcal.easyquant.samples} calibration samples (by id) run through the model(s)
 * in Spark. The samples are cut into chunks of {@code easyquant.chunk-samples} consecutive ids — a chunking fixed
 * by the ids, not by the partitions, and every chunk is captured whole in one partition — and each chunk gives
 * one {@link LayerProblem} per layer (Conv layers optionally on a few output positions per sample,
 * {@link OutputPositions}); the problems are spread one per Spark partition and persisted. Search: every layer's
 * {@link AlternatingSearch.Stepper} advances together; each step (the initial scales, a weight grid, a
 * per-channel proposal, an activation grid) of all unfinished layers is one Spark job whose tasks are the
 * (layer, chunk) problems, each scoring all of its layer's pending candidate blocks. A task sums its chunk's
 * per-sample cosines in sample order and the driver adds the chunks' sums in sample order
 * ({@link CandidateScores#merge}); since the chunks are the same for any partitioning, so is every sum, bit for
 * bit: the chosen scales and the cosines in the table do not depend on the partitioning or on task order.
 *
 * <p>Shared activation tensors: the QDQ model holds one scale per activation tensor, and
 * {@link PipelineState#activationParams()} takes its first consumer's. Every consumer is searched, but a later
 * consumer of a tensor is then given the activation scale chosen for the tensor's first consumer (node order),
 * and its metric_value is re-scored in Spark at the scales the table actually holds (its own searched weight
 * scales, or its initial ones if those score better with the imposed activation scale). Consumers of one tensor
 * always fall in the same wave.
 */
public final class EasyQuantPass implements Pass {

    @Override
    public String name() {
        return "easyquant";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        if (!state.calibrated()) {
            throw new IllegalStateException("pass easyquant needs initial scales: put calibrate before it in quantcal.pipeline");
        }
        long t0 = System.nanoTime();
        QuantcalConfig cfg = ctx.config();
        QuantcalConfig.EasyQuant eq = cfg.easyquant();
        OnnxModel model = state.model();
        List<QuantizableNode> nodes = selected(state.searchableNodes(), eq.layers());
        state.printKept(ctx.out(), "easyquant", "at the calibrated parameters (no layer search for this op)");
        Map<String, LayerCapture.Layer> layers = new LinkedHashMap<>();
        for (QuantizableNode n : nodes) layers.put(n.name(), layer(model, n, state, eq.outputAfterActivation()));
        AlternatingSearch.Options opts = new AlternatingSearch.Options(eq.alpha(), eq.beta(), eq.segments(), eq.rounds(),
                eq.epsilon(), eq.blockSize(), 1e-9);

        JavaRDD<Sample> samples = searchSamples(ctx, model);
        try {
            return search(ctx, state, nodes, layers, opts, samples, t0);
        } finally {
            samples.unpersist(false);
        }
    }

    /** How many chunks of {@code easyquant.chunk-samples} ids the first {@code easyquant.samples} ids make. */
    static int chunks(QuantcalConfig.EasyQuant eq) {
        return (eq.samples() + eq.chunkSamples() - 1) / eq.chunkSamples();
    }

    /**
     * The first {@code easyquant.samples} calibration samples by id, decoded once for every wave's capture,
     * re-spread over the partitions by chunk (consecutive chunks to one partition, at most one partition per
     * chunk), so that every partition holds whole chunks.
     */
    private static JavaRDD<Sample> searchSamples(RunContext ctx, OnnxModel model) {
        QuantcalConfig cfg = ctx.config();
        long n = cfg.easyquant().samples();
        int perChunk = cfg.easyquant().chunkSamples();
        int chunks = chunks(cfg.easyquant());
        int partitions = SampleSets.partitions(ctx.spark(), cfg.calibration());
        int spread = Math.min(partitions, chunks);
        return ctx.samples().get(InputBinding.of(model, cfg, cfg.calibration())) // decoded once per run
                .filter(s -> s.id() < n)
                .mapToPair(s -> new Tuple2<>((int) (s.id() / perChunk * spread / chunks), s))
                .partitionBy(new IndexPartitioner(spread)).values().persist(StorageLevel.MEMORY_AND_DISK());
    }

    private PipelineState search(RunContext ctx, PipelineState state, List<QuantizableNode> nodes,
                                 Map<String, LayerCapture.Layer> layers, AlternatingSearch.Options opts,
                                 JavaRDD<Sample> samples, long t0) {
        QuantcalConfig cfg = ctx.config();
        QuantcalConfig.EasyQuant eq = cfg.easyquant();
        OnnxModel model = state.model();
        // waves over all quantizable nodes (an unsearched layer upstream is quantized with its calibrated scales)
        List<List<QuantizableNode>> waves = eq.sequential() ? LayerOrder.waves(model, state.searchableNodes()) : List.of(state.searchableNodes());
        Map<String, Final> finals = new LinkedHashMap<>();
        Set<String> quantizedBefore = new LinkedHashSet<>();
        long captureNs = 0, searchNs = 0, chunks = 0, jobs = 0;
        List<Map<String, Object>> waveSummary = new ArrayList<>();
        BroadcastModel fp = BroadcastModel.of(ctx, model, "model"); // shipped once for every wave
        try {
            int waveNo = 0;
            for (List<QuantizableNode> wave : waves) {
                waveNo++;
                List<QuantizableNode> searchedHere = wave.stream().filter(n -> layers.containsKey(n.name())).toList();
                if (!searchedHere.isEmpty()) {
                    long tc = System.nanoTime();
                    String label = "easyquant wave " + waveNo + "/" + waves.size();
                    ctx.progress().step(label + ", capture the search data of " + searchedHere.size() + " layers",
                            Progress.share(waveNo, waves.size(), 0));
                    OnnxModel inputModel = quantizedBefore.isEmpty() ? null : partialQdq(cfg, state, finals, quantizedBefore);
                    List<LayerCapture.Layer> waveLayers = searchedHere.stream().map(n -> layers.get(n.name())).toList();
                    BroadcastModel qm = inputModel == null ? null : BroadcastModel.of(ctx, inputModel, "partial qdq model");
                    JavaRDD<LayerProblem> problems = capture(ctx, samples, model, fp, qm, waveLayers);
                    try {
                        long waveChunks = problems.count();
                        // the wave's data are captured (and persisted): its partial QDQ model and the FP model's
                        // sessions for this capture list are done with
                        if (qm != null) qm.release();
                        io.quantcal.kernels.runtime.SessionCache.evict(model.sha256());
                        if (waveChunks == 0) {
                            throw new io.quantcal.job.data.BadSampleException("easyquant: no usable search samples among the first "
                                    + eq.samples() + " calibration samples");
                        }
                        chunks += waveChunks;
                        long ts = System.nanoTime();
                        captureNs += ts - tc;
                        Search search = searchAll(ctx, label, waveNo, waves.size(), problems, waveLayers, opts, cfg.kernelThreads());
                        jobs += search.jobs();
                        finals.putAll(finish(state, searchedHere, waveLayers, search.results(), problems));
                        searchNs += System.nanoTime() - ts;
                        Map<String, Object> w = new LinkedHashMap<>();
                        w.put("layers", searchedHere.stream().map(QuantizableNode::name).toList());
                        w.put("inputs_from", inputModel == null ? "fp32" : "qdq of " + quantizedBefore.size() + " earlier layers");
                        w.put("spark_jobs", search.jobs());
                        waveSummary.add(w);
                        if (eq.sequential()) {
                            ctx.out().printf("easyquant wave %d: %s (inputs %s), %d Spark jobs%n", waveSummary.size(),
                                    w.get("layers"), w.get("inputs_from"), search.jobs());
                        }
                    } finally {
                        problems.unpersist(false);
                    }
                }
                for (QuantizableNode n : wave) quantizedBefore.add(n.name());
            }
        } finally {
            fp.release();
        }
        return results(ctx, state, nodes, layers, finals, waveSummary, chunks, jobs, captureNs / 1_000_000, searchNs / 1_000_000,
                (System.nanoTime() - t0) / 1_000_000);
    }

    /** One layer's search: the result and how many candidates it scored. */
    /**
     * @param flops what its candidate gemms computed ({@link LayerProblem#candidateFlops} per candidate and chunk)
     * @param nanos the time its tasks spent scoring them (summed over tasks, so over cores)
     */
    record Searched(AlternatingSearch.Result result, long candidates, long steps, long flops, long nanos) {}

    /** One task's scores of one block of a layer's step on its chunk, with the work and time of the task's call. */
    record Scored(String layer, int block, CandidateScores scores, long flops, long nanos) implements java.io.Serializable {}

    /** A wave's searches and the Spark jobs they took. */
    record Search(List<Searched> results, long jobs) {}

    /** What the table gets for a layer: its parameters, the cosine at them, and where a shared Sa came from. */
    record Final(QuantParams weight, QuantParams activation, double cosine, String sharedFrom, Searched searched) {}

    private static List<QuantizableNode> selected(List<QuantizableNode> all, List<String> names) {
        if (names.isEmpty()) return all;
        List<String> known = all.stream().map(QuantizableNode::name).toList();
        for (String n : names) {
            if (!known.contains(n)) {
                throw new ConfigException("quantcal.easyquant.layers: no quantizable node '" + n + "'; nodes are " + known);
            }
        }
        return all.stream().filter(n -> names.contains(n.name())).toList();
    }

    private static LayerCapture.Layer layer(OnnxModel model, QuantizableNode node, PipelineState state, boolean afterActivation) {
        // searched as the 2-D Conv (Gemm, MatMul) that computes the node; LayerCapture lifts its tensors
        QuantizableNode n = node.as2d();
        LayerOp op = LayerOp.of(n);
        TensorQuant a = state.quant().get(n.name() + "/activation");
        TensorQuant w = state.quant().get(n.name() + "/weight");
        if (a == null || w == null) {
            throw new IllegalStateException("easyquant: node " + n.name() + " has no calibrated parameters");
        }
        return new LayerCapture.Layer(n.name(), n.input(), afterActivation ? n.finalOutput() : n.output(), afterActivation,
                node.as2dWeight(model.initializerFloats(n.weight())), n.weightShape(),
                n.bias() == null ? null : model.initializerFloats(n.bias()), op, a.params(), node.as2dWeightParams(w.params()),
                node);
    }

    /**
     * The model with only {@code done} quantized: searched layers at their chosen scales, the others at the
     * table's. A later wave's inputs are captured from it (sequential mode).
     */
    private static OnnxModel partialQdq(QuantcalConfig cfg, PipelineState state, Map<String, Final> finals, Set<String> done) {
        Map<String, QuantParams> activations = new LinkedHashMap<>(state.activationParams());
        Map<String, QuantParams> weights = new LinkedHashMap<>(state.weightParams());
        for (QuantizableNode n : state.nodes()) {
            Final f = finals.get(n.name());
            if (f == null) continue;
            weights.put(n.weight(), f.weight());
            if (f.sharedFrom() == null) activations.put(n.input(), f.activation());
        }
        return QdqExporter.export(state.model(), activations, weights, Map.of(), ExportPass.internalOptions(cfg), done);
    }

    /**
     * Per partition: its search samples through the FP model (and through {@code qm}, the partial QDQ model, when given, for
     * X), chunk by chunk ({@link #searchSamples}); one problem per (layer, chunk), each then in a Spark partition of
     * its own, persisted.
     */
    private static JavaRDD<LayerProblem> capture(RunContext ctx, JavaRDD<Sample> samples, OnnxModel model, BroadcastModel bm,
                                                 BroadcastModel qm, List<LayerCapture.Layer> layers) {
        QuantcalConfig cfg = ctx.config();
        int positions = cfg.easyquant().positions();
        long seed = cfg.calibration().seed();
        int perChunk = cfg.easyquant().chunkSamples();
        int chunks = chunks(cfg.easyquant());
        ModelInputs input = InputBinding.of(model, cfg, cfg.calibration());
        var sc = ctx.spark().sparkContext();
        Broadcast<List<LayerCapture.Layer>> templates = sc.broadcast(List.copyOf(layers),
                scala.reflect.ClassTag$.MODULE$.apply(List.class));
        List<String> fpTensors = qm == null ? LayerCapture.tensors(layers) : LayerCapture.outputTensors(layers);
        List<String> inTensors = LayerCapture.inputTensors(layers);
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        int batch = cfg.calibration().batchSize();
        boolean skipBad = cfg.calibration().skipBadSamples();
        int threads = cfg.kernelThreads();
        JavaPairRDD<Integer, LayerProblem> keyed = samples.mapPartitions(it -> {
            KernelThreads.limit(threads);
            List<Sample> good = SamplePartitions.split(it, skipBad).good(); // sorted by id
            List<Tuple2<Integer, LayerProblem>> out = new ArrayList<>();
            for (int from = 0; from < good.size(); ) {
                long chunk = good.get(from).id() / perChunk;
                int to = from;
                while (to < good.size() && good.get(to).id() / perChunk == chunk) to++;
                List<Sample> c = good.subList(from, to);
                List<LayerProblem> ps = TaskMemory.guard("easyquant", "capturing the inputs and outputs of "
                        + layers.size() + " layers for a chunk of " + c.size() + " samples (quantcal.easyquant.chunk-samples = "
                        + perChunk + ", positions = " + positions + ")", () -> {
                            try (var fpl = bm.lease(fpTensors, opts); var ql = qm == null ? null : qm.lease(inTensors, opts)) {
                                return LayerCapture.capture(fpl.runner(), ql == null ? null : ql.runner(), input,
                                        c.stream().mapToLong(Sample::id).toArray(), c.stream().map(Sample::inputs).toList(),
                                        batch, templates.value(), positions, seed);
                            }
                        });
                for (int l = 0; l < ps.size(); l++) out.add(new Tuple2<>(l * chunks + (int) chunk, ps.get(l)));
                from = to;
            }
            return out.iterator();
        }).mapToPair(t -> t);
        return keyed.partitionBy(new IndexPartitioner(layers.size() * chunks)).values().persist(StorageLevel.MEMORY_AND_DISK());
    }

    /**
     * All layers' searches, stepped together: each step of every unfinished layer is one Spark job over the
     * (layer, chunk) problems; a task scores its layer's pending blocks on its chunk.
     */
    private static Search searchAll(RunContext ctx, String label, int wave, int waves, JavaRDD<LayerProblem> problems,
                                    List<LayerCapture.Layer> layers, AlternatingSearch.Options opts, int threads) {
        List<AlternatingSearch.Stepper> steppers = new ArrayList<>();
        for (LayerCapture.Layer l : layers) steppers.add(new AlternatingSearch.Stepper(l.weight(), l.activation(), opts));
        long[] candidates = new long[layers.size()];
        long[] steps = new long[layers.size()];
        long[] flops = new long[layers.size()];
        long[] nanos = new long[layers.size()];
        Map<String, Integer> index = new LinkedHashMap<>();
        for (int i = 0; i < layers.size(); i++) index.put(layers.get(i).layer(), i);
        long jobs = 0;
        while (steppers.stream().anyMatch(s -> !s.done())) {
            Map<String, List<CandidateBlock>> pending = new LinkedHashMap<>();
            long stepCandidates = 0;
            for (int i = 0; i < layers.size(); i++) {
                if (steppers.get(i).done()) continue;
                pending.put(layers.get(i).layer(), steppers.get(i).pending());
                steps[i]++;
                for (CandidateBlock b : steppers.get(i).pending()) {
                    candidates[i] += b.size();
                    stepCandidates += b.size();
                }
            }
            ctx.progress().step(label + ", " + stepNames(steppers) + ", " + pending.size() + " layers, " + stepCandidates
                    + " candidates", Progress.share(wave, waves, (double) jobs / (1 + 3 * opts.rounds())));
            List<Scored> parts = problems.flatMap(p -> {
                KernelThreads.limit(threads);
                List<CandidateBlock> blocks = pending.get(p.layer());
                List<Scored> out = new ArrayList<>();
                if (blocks != null) {
                    // the step's blocks share their fixed side: prepared once for all of them
                    long t0 = System.nanoTime();
                    List<CandidateScores> scores = CandidateEvaluation.evaluate(p, blocks);
                    long took = System.nanoTime() - t0;
                    for (int b = 0; b < blocks.size(); b++) {
                        out.add(new Scored(p.layer(), b, scores.get(b), blocks.get(b).size() * p.candidateFlops(),
                                b == 0 ? took : 0));
                    }
                }
                return out.iterator();
            }).collect();
            jobs++;
            Map<String, List<List<CandidateScores>>> byBlock = new LinkedHashMap<>();
            for (var e : pending.entrySet()) {
                List<List<CandidateScores>> l = new ArrayList<>();
                for (int b = 0; b < e.getValue().size(); b++) l.add(new ArrayList<>());
                byBlock.put(e.getKey(), l);
            }
            for (Scored t : parts) {
                byBlock.get(t.layer()).get(t.block()).add(t.scores());
                int i = index.get(t.layer());
                flops[i] += t.flops();
                nanos[i] += t.nanos();
            }
            for (int i = 0; i < layers.size(); i++) {
                List<List<CandidateScores>> l = byBlock.get(layers.get(i).layer());
                if (l == null) continue;
                List<CandidateScores> merged = new ArrayList<>();
                for (List<CandidateScores> blockParts : l) merged.add(CandidateScores.merge(blockParts));
                steppers.get(i).accept(merged);
            }
        }
        List<Searched> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) out.add(new Searched(steppers.get(i).result(), candidates[i], steps[i], flops[i], nanos[i]));
        return new Search(out, jobs);
    }

    /** What the unfinished layers' current step is ("weight grid", "activation grid", ...), each kind once. */
    private static String stepNames(List<AlternatingSearch.Stepper> steppers) {
        return String.join(" + ", steppers.stream().filter(s -> !s.done()).map(AlternatingSearch.Stepper::stepName)
                .distinct().toList());
    }

    /**
     * A wave's final parameters: each layer's search result, except that a later consumer of a shared activation
     * tensor takes its first consumer's activation scale (re-scored, keeping its own searched or initial weight
     * scales, whichever scores better with it).
     */
    private static Map<String, Final> finish(PipelineState state, List<QuantizableNode> nodes, List<LayerCapture.Layer> layers,
                                             List<Searched> searched, JavaRDD<LayerProblem> problems) {
        Map<String, String> firstConsumer = new LinkedHashMap<>();
        for (QuantizableNode n : state.searchableNodes()) firstConsumer.putIfAbsent(n.input(), n.name());
        Map<String, QuantParams> chosenActivation = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            if (firstConsumer.get(nodes.get(i).input()).equals(nodes.get(i).name())) {
                chosenActivation.put(nodes.get(i).input(), searched.get(i).result().activation());
            }
        }
        Map<String, Final> out = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            QuantizableNode n = nodes.get(i);
            LayerCapture.Layer l = layers.get(i);
            AlternatingSearch.Result r = searched.get(i).result();
            QuantParams w = r.weight();
            QuantParams a = r.activation();
            double fin = r.finalCosine();
            String sharedFrom = null;
            if (!firstConsumer.get(n.input()).equals(n.name())) {
                sharedFrom = firstConsumer.get(n.input());
                QuantParams imposed = chosenActivation.get(n.input());
                a = imposed != null ? imposed : state.quant().get(sharedFrom + "/activation").params();
                double withOwn = meanCosine(problems, n.name(), w, a);
                double withInitial = meanCosine(problems, n.name(), l.weight(), a);
                if (withInitial > withOwn) {
                    w = l.weight();
                    fin = withInitial;
                } else {
                    fin = withOwn;
                }
            }
            out.put(n.name(), new Final(n.fromAs2dWeightParams(w), a, fin, sharedFrom, searched.get(i)));
        }
        return out;
    }

    /** Scores a block over one layer's chunks: one Spark job, partial scores merged in sample order. */
    private static CandidateScores evaluate(JavaRDD<LayerProblem> problems, String layer, CandidateBlock block) {
        List<CandidateScores> parts = problems.filter(p -> p.layer().equals(layer))
                .map(p -> CandidateEvaluation.evaluate(p, block)).collect();
        return CandidateScores.merge(parts);
    }

    private PipelineState results(RunContext ctx, PipelineState state, List<QuantizableNode> nodes,
                                  Map<String, LayerCapture.Layer> layers, Map<String, Final> finals,
                                  List<Map<String, Object>> waves, long chunks, long jobs, long captureMs, long searchMs,
                                  long wallMs) {
        QuantcalConfig.EasyQuant eq = ctx.config().easyquant();
        Map<String, TensorQuant> quant = new LinkedHashMap<>(state.quant());
        Map<String, Object> perLayer = new LinkedHashMap<>();
        long totalCandidates = 0, totalFlops = 0, totalNanos = 0;
        int samples = 0;
        for (QuantizableNode n : nodes) {
            LayerCapture.Layer l = layers.get(n.name());
            Final f = finals.get(n.name());
            AlternatingSearch.Result r = f.searched().result();
            samples = r.samples();
            QuantParams w = f.weight();
            QuantParams a = f.activation();
            TensorQuant oa = quant.get(n.name() + "/activation");
            TensorQuant ow = quant.get(n.name() + "/weight");
            quant.put(n.name() + "/activation", new TensorQuant(oa.tensor(), oa.node(), oa.opType(), "activation", a,
                    "easyquant", "cosine", f.cosine(), r.initialCosine()));
            quant.put(n.name() + "/weight", new TensorQuant(ow.tensor(), ow.node(), ow.opType(), "weight", w,
                    "easyquant", "cosine", f.cosine(), r.initialCosine()));
            Int16Accumulation.Report acc = Int16Accumulation.report(w, a, l.op().reductionLength(l.wShape()));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("initial_cosine", r.initialCosine());
            m.put("final_cosine", f.cosine());
            m.put("searched_cosine", r.finalCosine());
            if (f.sharedFrom() != null) m.put("activation_scale_from", f.sharedFrom());
            m.put("activation_scale_initial", l.activation().scale()[0]);
            m.put("activation_scale", a.scale()[0]);
            m.put("weight_scales_initial", l.weight().scale());
            m.put("weight_scales", w.scale());
            m.put("rounds", r.history().size());
            Map<String, Object> ac = new LinkedHashMap<>();
            ac.put("max_product", acc.maxProduct());
            ac.put("products_per_int16", acc.productsPerInt16());
            ac.put("reduction_length", acc.reductionLength());
            ac.put("int16_partials", acc.int16Partials());
            m.put("int16_accumulation", ac);
            m.put("candidate_evaluations", f.searched().candidates());
            m.put("steps", f.searched().steps());
            m.put("work_gflop", f.searched().flops() / 1e9);
            m.put("task_s", f.searched().nanos() / 1e9);
            m.put("gflop_per_s", gflopPerSecond(f.searched().flops(), f.searched().nanos()));
            totalFlops += f.searched().flops();
            totalNanos += f.searched().nanos();
            perLayer.put(n.name(), m);
            totalCandidates += f.searched().candidates();
            ctx.out().printf("easyquant %-24s cos %.6f -> %.6f  Sa %.6g -> %.6g%s  Sw[0] %.6g -> %.6g  int16 x%d  %d cands"
                            + "  %.2f GFLOP in %.2f task-s%n",
                    n.name(), r.initialCosine(), f.cosine(), l.activation().scale()[0], a.scale()[0],
                    f.sharedFrom() != null ? " (from " + f.sharedFrom() + ")" : "", l.weight().scale()[0], w.scale()[0],
                    acc.productsPerInt16(), f.searched().candidates(), f.searched().flops() / 1e9,
                    f.searched().nanos() / 1e9);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("mode", eq.mode());
        summary.put("concurrency", "all layers of a wave stepped together, one Spark job per step, one task per (layer, chunk)");
        summary.put("samples", samples);
        summary.put("positions", eq.positions());
        summary.put("chunk_samples", eq.chunkSamples());
        summary.put("chunks", chunks);
        summary.put("layers_searched", nodes.size());
        summary.put("kept_as_calibrated", state.keptAsCalibrated());
        summary.put("waves", waves);
        summary.put("spark_jobs", jobs);
        summary.put("candidate_evaluations", totalCandidates);
        // the candidate gemms' work; per task (one core each) and over the search's wall time (all cores)
        summary.put("work_gflop", totalFlops / 1e9);
        summary.put("task_s", totalNanos / 1e9);
        summary.put("gflop_per_s_per_task", gflopPerSecond(totalFlops, totalNanos));
        summary.put("gflop_per_s_wall", gflopPerSecond(totalFlops, searchMs * 1_000_000L));
        summary.put("capture_ms", captureMs);
        summary.put("search_ms", searchMs);
        summary.put("wall_ms", wallMs);
        summary.put("layers", perLayer);
        ctx.out().printf("easyquant (%s): %d layers in %d wave(s), %d samples, %d chunks, %d candidate evaluations in %d Spark jobs, "
                        + "capture %.1f s, search %.1f s; candidate gemms %.1f GFLOP, %.1f GFLOP/s per task, %.1f GFLOP/s over the search%n",
                eq.mode(), nodes.size(), waves.size(), samples, chunks, totalCandidates, jobs, captureMs / 1000.0,
                searchMs / 1000.0, totalFlops / 1e9, gflopPerSecond(totalFlops, totalNanos),
                gflopPerSecond(totalFlops, searchMs * 1_000_000L));
        return state.withQuant(quant).withSummary(name(), summary);
    }

    /** Mean per-sample cosine of one layer at the given scales (an activation block of one candidate). */
    private static double meanCosine(JavaRDD<LayerProblem> problems, String layer, QuantParams w, QuantParams a) {
        CandidateScores s = evaluate(problems, layer, CandidateBlock.perTensor(SearchSide.ACTIVATION, w.scale(), a.scale()[0]));
        return s.sum(0, 0) / s.count();
    }

    /** Products per output value: Conv C/group·kh·kw, Gemm/MatMul K. */
    /** Work over time in GFLOP/s, 0 without time. */
    static double gflopPerSecond(long flops, long nanos) {
        return nanos <= 0 ? 0 : flops / (double) nanos;
    }

}
