package io.quantcal.job.pipeline;

import io.quantcal.job.config.ConfigException;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.kernels.easyquant.AlternatingSearch;
import io.quantcal.kernels.easyquant.CandidateBlock;
import io.quantcal.kernels.easyquant.CandidateEvaluation;
import io.quantcal.kernels.easyquant.CandidateScores;
import io.quantcal.kernels.easyquant.Int16Accumulation;
import io.quantcal.kernels.easyquant.LayerCapture;
import io.quantcal.kernels.easyquant.LayerProblem;
import io.quantcal.kernels.easyquant.SearchSide;
import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;

/**
 * {@code easyquant} (Wu et al. 2020), parallel mode: every searched layer starts from FP inputs.
 *
 * <p>Capture: the first {@code quantcal.easyquant.samples} calibration samples (by id) run through the FP
 * model in Spark; each partition returns one {@link LayerProblem} per (layer, chunk of its samples), kept as a
 * persisted RDD. Search: the driver runs {@link AlternatingSearch#run} for all layers at once, one driver
 * thread per layer (Spark runs concurrent jobs, so the tasks of all layers are in flight together); a layer's
 * evaluator is one Spark job over that layer's chunks whose partial scores the driver merges in sample order
 * ({@link CandidateScores#merge}), so the chosen scales do not depend on the partitioning or on thread timing.
 *
 * <p>Shared activation tensors: the QDQ model holds one scale per activation tensor, and
 * {@link PipelineState#activationParams()} takes its first consumer's. Every consumer is searched, but a later
 * consumer of a tensor is then given the activation scale chosen for the tensor's first consumer (node order),
 * and its metric_value is re-scored in Spark at the scales the table actually holds (its own searched weight
 * scales, or its initial ones if those score better with the imposed activation scale).
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
        List<QuantizableNode> nodes = selected(state.nodes(), eq.layers());
        List<LayerCapture.Layer> layers = new ArrayList<>();
        for (QuantizableNode n : nodes) layers.add(layer(model, n, state, eq.outputAfterActivation()));

        JavaRDD<LayerProblem> problems = capture(ctx, model, layers).persist(StorageLevel.MEMORY_AND_DISK());
        try {
            long chunks = problems.count();
            if (chunks == 0) {
                throw new io.quantcal.job.data.BadSampleException("easyquant: no usable search samples among the first "
                        + eq.samples() + " calibration samples");
            }
            long tCapture = System.nanoTime();
            AlternatingSearch.Options opts = new AlternatingSearch.Options(eq.alpha(), eq.beta(), eq.segments(), eq.rounds(),
                    eq.epsilon(), eq.blockSize(), 1e-9);
            List<Searched> searched = searchAll(problems, layers, opts);
            return results(ctx, state, nodes, layers, searched, problems, chunks,
                    (tCapture - t0) / 1_000_000, (System.nanoTime() - tCapture) / 1_000_000);
        } finally {
            problems.unpersist(false);
        }
    }

    /** One layer's search: the result, how many candidates were scored, and its wall time. */
    record Searched(AlternatingSearch.Result result, long candidates, long blocks, long wallMs) {}

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

    private static LayerCapture.Layer layer(OnnxModel model, QuantizableNode n, PipelineState state, boolean afterActivation) {
        Activation act = n.activation() == null ? Activation.NONE
                : n.activation().equals("Relu") ? Activation.RELU
                : Activation.clip((float) n.clipMin(), (float) n.clipMax());
        LayerOp op = switch (n.opType()) {
            case "Conv" -> new LayerOp.Conv(new ConvSpec(n.strides(), n.pads(), n.dilations(), n.group()), act);
            case "Gemm" -> new LayerOp.Gemm(n.transB(), act);
            case "MatMul" -> new LayerOp.MatMul(act);
            default -> throw new IllegalStateException("easyquant: node " + n.name() + " has op " + n.opType());
        };
        TensorQuant a = state.quant().get(n.name() + "/activation");
        TensorQuant w = state.quant().get(n.name() + "/weight");
        if (a == null || w == null) {
            throw new IllegalStateException("easyquant: node " + n.name() + " has no calibrated parameters");
        }
        return new LayerCapture.Layer(n.name(), n.input(), afterActivation ? n.finalOutput() : n.output(), afterActivation,
                model.initializerFloats(n.weight()), model.shape(n.weight()),
                n.bias() == null ? null : model.initializerFloats(n.bias()), op, a.params(), w.params());
    }

    /** Per partition: its first-N samples through the FP model, one problem per (layer, chunk). */
    private static JavaRDD<LayerProblem> capture(RunContext ctx, OnnxModel model, List<LayerCapture.Layer> layers) {
        QuantcalConfig cfg = ctx.config();
        long n = cfg.easyquant().samples();
        int partitions = SampleSets.partitions(ctx.spark(), cfg.calibration());
        // the search samples are re-spread over the partitions, so every partition holds a chunk
        JavaRDD<Sample> samples = SampleSets.load(ctx.spark(), cfg, cfg.calibration(), partitions)
                .filter(s -> s.id() < n).sortBy(Sample::id, true, partitions);
        CalibratePass.ModelInput input = CalibratePass.ModelInput.of(model, cfg);
        var sc = ctx.spark().sparkContext();
        BroadcastModel bm = BroadcastModel.of(ctx.spark(), model, "model");
        Broadcast<List<LayerCapture.Layer>> templates = sc.broadcast(List.copyOf(layers),
                scala.reflect.ClassTag$.MODULE$.apply(List.class));
        List<String> tensors = LayerCapture.tensors(layers);
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        int batch = cfg.calibration().batchSize();
        boolean skipBad = cfg.calibration().skipBadSamples();
        return samples.mapPartitions(it -> {
            SamplePartitions.Split split = SamplePartitions.split(it, skipBad);
            ModelRunner runner = bm.runner(tensors, opts);
            long[] ids = split.good().stream().mapToLong(Sample::id).toArray();
            return LayerCapture.capture(runner, input.name(), input.sampleShape(), ids,
                    split.good().stream().map(Sample::values).toList(), batch, templates.value()).iterator();
        });
    }

    /** Scores a block over one layer's chunks: one Spark job, partial scores merged in sample order. */
    private static CandidateScores evaluate(JavaRDD<LayerProblem> problems, String layer, CandidateBlock block) {
        List<CandidateScores> parts = problems.filter(p -> p.layer().equals(layer))
                .map(p -> CandidateEvaluation.evaluate(p, block)).collect();
        return CandidateScores.merge(parts);
    }

    private static List<Searched> searchAll(JavaRDD<LayerProblem> problems, List<LayerCapture.Layer> layers,
                                            AlternatingSearch.Options opts) {
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, layers.size()), r -> {
            Thread t = new Thread(r, "easyquant-search");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<Searched>> futures = new ArrayList<>();
            for (LayerCapture.Layer l : layers) {
                futures.add(pool.submit(() -> {
                    long t = System.nanoTime();
                    AtomicLong candidates = new AtomicLong();
                    AtomicLong blocks = new AtomicLong();
                    AlternatingSearch.Result r = AlternatingSearch.run(l.weight(), l.activation(), block -> {
                        candidates.addAndGet(block.size());
                        blocks.incrementAndGet();
                        return evaluate(problems, l.layer(), block);
                    }, opts);
                    return new Searched(r, candidates.get(), blocks.get(), (System.nanoTime() - t) / 1_000_000);
                }));
            }
            List<Searched> out = new ArrayList<>();
            for (Future<Searched> f : futures) out.add(f.get());
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("easyquant: search interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) throw re;
            throw new IllegalStateException("easyquant: search failed: " + c.getMessage(), c);
        } finally {
            pool.shutdownNow();
        }
    }

    private PipelineState results(RunContext ctx, PipelineState state, List<QuantizableNode> nodes,
                                  List<LayerCapture.Layer> layers, List<Searched> searched, JavaRDD<LayerProblem> problems,
                                  long chunks, long captureMs, long searchMs) {
        Map<String, TensorQuant> quant = new LinkedHashMap<>(state.quant());
        // the tensor's first consumer in node order (among all quantizable nodes) fixes its one activation scale
        Map<String, String> firstConsumer = new LinkedHashMap<>();
        for (QuantizableNode n : state.nodes()) firstConsumer.putIfAbsent(n.input(), n.name());
        Map<String, QuantParams> chosenActivation = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            if (firstConsumer.get(nodes.get(i).input()).equals(nodes.get(i).name())) {
                chosenActivation.put(nodes.get(i).input(), searched.get(i).result().activation());
            }
        }
        Map<String, Object> perLayer = new LinkedHashMap<>();
        long totalCandidates = 0;
        int samples = 0;
        for (int i = 0; i < nodes.size(); i++) {
            QuantizableNode n = nodes.get(i);
            LayerCapture.Layer l = layers.get(i);
            Searched s = searched.get(i);
            AlternatingSearch.Result r = s.result();
            samples = r.samples();
            QuantParams w = r.weight();
            QuantParams a = r.activation();
            double fin = r.finalCosine();
            String sharedFrom = null;
            QuantParams imposed = chosenActivation.get(n.input());
            if (!firstConsumer.get(n.input()).equals(n.name())) {
                // a later consumer: the activation scale is its first consumer's (searched, or as calibrated)
                sharedFrom = firstConsumer.get(n.input());
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
            TensorQuant oa = quant.get(n.name() + "/activation");
            TensorQuant ow = quant.get(n.name() + "/weight");
            quant.put(n.name() + "/activation", new TensorQuant(oa.tensor(), oa.node(), oa.opType(), "activation", a,
                    "easyquant", "cosine", fin, r.initialCosine()));
            quant.put(n.name() + "/weight", new TensorQuant(ow.tensor(), ow.node(), ow.opType(), "weight", w,
                    "easyquant", "cosine", fin, r.initialCosine()));
            Int16Accumulation.Report acc = Int16Accumulation.report(w, a, reductionLength(l));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("initial_cosine", r.initialCosine());
            m.put("final_cosine", fin);
            m.put("searched_cosine", r.finalCosine());
            if (sharedFrom != null) m.put("activation_scale_from", sharedFrom);
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
            m.put("candidate_evaluations", s.candidates());
            m.put("spark_jobs", s.blocks());
            m.put("wall_ms", s.wallMs());
            perLayer.put(n.name(), m);
            totalCandidates += s.candidates();
            ctx.out().printf("easyquant %-24s cos %.6f -> %.6f  Sa %.6g -> %.6g%s  Sw[0] %.6g -> %.6g  int16 x%d  %d cands %.1f s%n",
                    n.name(), r.initialCosine(), fin, l.activation().scale()[0], a.scale()[0],
                    sharedFrom != null ? " (from " + sharedFrom + ")" : "", l.weight().scale()[0], w.scale()[0],
                    acc.productsPerInt16(), s.candidates(), s.wallMs() / 1000.0);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("mode", "parallel");
        summary.put("concurrency", "one driver thread per layer, one Spark job per candidate block");
        summary.put("samples", samples);
        summary.put("chunks", chunks);
        summary.put("layers_searched", nodes.size());
        summary.put("candidate_evaluations", totalCandidates);
        summary.put("capture_ms", captureMs);
        summary.put("search_ms", searchMs);
        summary.put("layers", perLayer);
        ctx.out().printf("easyquant: %d layers, %d samples in %d chunks, %d candidate evaluations, capture %.1f s, search %.1f s%n",
                nodes.size(), samples, chunks, totalCandidates, captureMs / 1000.0, searchMs / 1000.0);
        return state.withQuant(quant).withSummary(name(), summary);
    }

    /** Mean per-sample cosine of one layer at the given scales (an activation block of one candidate). */
    private static double meanCosine(JavaRDD<LayerProblem> problems, String layer, QuantParams w, QuantParams a) {
        CandidateScores s = evaluate(problems, layer, CandidateBlock.perTensor(SearchSide.ACTIVATION, w.scale(), a.scale()[0]));
        return s.sum(0, 0) / s.count();
    }

    /** Products per output value: Conv C/group·kh·kw, Gemm/MatMul K. */
    private static long reductionLength(LayerCapture.Layer l) {
        long[] w = l.wShape();
        if (w.length == 4) return w[1] * w[2] * w[3];
        if (l.op() instanceof LayerOp.Gemm g && g.transB()) return w[1];
        return w[0];
    }
}
