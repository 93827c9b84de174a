package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.kernels.calib.BatchBudget;
import io.quantcal.kernels.calib.ModelComparison;
import io.quantcal.kernels.calib.ModelComparison.Labelled;
import io.quantcal.kernels.calib.ModelComparison.Sums;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.InferenceSpeed;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

/**
 * {@code evaluate}: runs the FP32 and the QDQ model over the evaluation data in Spark and reports top-1
 * accuracy of each (when labels exist), top-1 agreement, output SQNR and mean cosine, and the SQNR of each
 * quantized layer's output against FP.
 */
public final class EvaluatePass implements Pass {

    /** run.json's passes.evaluate.after_each_method_skipped, and the report's reason, when the switch is off. */
    public static final String SKIPPED = "quantcal.evaluation.after-each-method = false: only the final model was evaluated";

    @Override
    public String name() {
        return "evaluate";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        QuantcalConfig cfg = ctx.config();
        OnnxModel fp = state.reference();
        OnnxModel qdq = state.qdqModel() != null ? state.qdqModel() : ExportPass.qdq(cfg, state);
        LayerTensors pairs = layerTensors(qdq, state.nodes());
        // an output or a layer whose shape depends on the data (after a detector's NonMaxSuppression and RoIAlign)
        // cannot be compared value by value: the output is named as such, the layer's SQNR is n/a
        Map<String, String> dynamic = io.quantcal.kernels.onnx.DataDependentShapes.of(fp);
        Compared.Output chosen = comparedOutput(fp, dynamic);
        LayerTensors compared = comparable(pairs, dynamic);
        // the model's other comparable outputs (a segmentation model's aux map, a multi-task head) ride with the layers
        List<String> layers = new ArrayList<>(compared.fp()), qLayers = new ArrayList<>(compared.quant());
        for (String o : chosen.others()) {
            if (layers.contains(o) || qLayers.contains(o)) continue;
            layers.add(o);
            qLayers.add(o);
        }
        String output = chosen.name();
        ModelInputs input = InputBinding.of(fp, cfg, cfg.evaluation());

        int partitions = SampleSets.partitions(ctx.spark(), cfg.evaluation());
        ctx.progress().step("evaluate: FP32 and QDQ models over the evaluation data", 0);
        // read once more for the model after each earlier method (below): decoded once, kept for those passes;
        // quantcal.evaluation.after-each-method = false: the final model only, no pass per earlier method
        boolean afterEach = cfg.evaluateAfterEachMethod();
        Map<String, PipelineState> stages = afterEach ? ctx.report().stages() : Map.of();
        boolean several = stages.size() > 1;
        JavaRDD<Sample> loaded = SampleSets.load(ctx.spark(), cfg, cfg.evaluation(), input, partitions);
        JavaRDD<Sample> samples = several ? loaded.persist(org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()) : loaded;
        BroadcastModel fpModel = BroadcastModel.of(ctx, fp, "fp32 model");
        BroadcastModel qModel = BroadcastModel.of(ctx, qdq, "qdq model");
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        BatchBudget batch = TaskMemory.budget(ctx.spark().sparkContext(), cfg);
        boolean skipBad = cfg.evaluation().skipBadSamples();
        String doing = "running " + fpModel.displayName() + " and its QDQ model with " + layers.size()
                + " layer outputs captured (batches of at most " + batch.maxBatch() + " samples, "
                + BatchBudget.mib(batch.budgetBytes()) + " per task)";

        Sums sums;
        int passes;
        InferenceSpeed.Result speed = null;
        // the model after each method that ran, against FP32 on the same data: each layer's SQNR and cosine after
        // calibrate, easyquant, adaround, learn, bias-correct in turn (the last is the model above)
        Map<String, Object> perStage = new LinkedHashMap<>();
        List<String> names = new ArrayList<>(stages.keySet());
        try {
            Compared c = compare(samples, fpModel, qdq, qModel, layers, qLayers, input, output, opts, batch, skipBad,
                    "its QDQ model", doing);
            sums = c.sums();
            passes = c.passes();
            if (cfg.evaluateSpeed()) {
                ctx.progress().step("evaluate: FP32 and QDQ inference time on this machine", 0);
                if (fp.large()) {
                    // the timing opens sessions of its own: a model above 1 GiB does not keep its capturing ones too
                    fpModel.closeSessions();
                    qModel.closeSessions();
                }
                speed = speed(samples, fp, qdq, input, opts);
            }
            for (int k = 0; k < names.size(); k++) {
                Sums after = sums;
                LayerTensors used = pairs;
                if (k < names.size() - 1) {
                    OnnxModel m = ExportPass.qdq(cfg, stages.get(names.get(k)));
                    LayerTensors mPairs = layerTensors(m, state.nodes());
                    used = mPairs;
                    ctx.progress().step("evaluate: FP32 and the model after " + names.get(k) + " over the evaluation data",
                            (k + 1.0) / (names.size() + 1));
                    BroadcastModel mModel = BroadcastModel.of(ctx, m, "model after " + names.get(k));
                    LayerTensors mc = comparable(mPairs, dynamic);
                    after = compare(samples, fpModel, m, mModel, mc.fp(), mc.quant(), input, output, opts, batch, skipBad,
                            "the model after " + names.get(k), "running " + fpModel.displayName() + " and the model after "
                                    + names.get(k) + " with " + layers.size() + " layer outputs captured").sums();
                }
                Map<String, Object> st = new LinkedHashMap<>();
                st.put("layer_sqnr_db", layerSqnr(state, used, after));
                st.put("layer_cosine", layerCosine(state, used, after));
                perStage.put(names.get(k), st);
            }
        } finally {
            if (several) samples.unpersist(false);
            // local mode runs the tasks in this JVM: release the FP32 session's ONNX Runtime arena now
            io.quantcal.kernels.runtime.SessionCache.evict(fp.sha256());
        }

        Map<String, Object> s = new LinkedHashMap<>();
        s.put("samples", sums.samples());
        s.put("passes_over_data", passes);
        s.put("labelled", sums.labelled());
        String notClasses = output == null ? null : notClassScores(chosen.info());
        if (output == null) {
            s.put("top1", "n/a: no output compared");
            s.put("output", "n/a: " + chosen.why());
        } else if (notClasses != null) {
            s.put("top1", "n/a: " + notClasses);
        } else {
            if (sums.labelled() > 0) {
                s.put("top1_fp32", sums.fpAccuracy());
                s.put("top1_quantized", sums.quantAccuracy());
            }
            s.put("top1_agreement", sums.agreement());
        }
        if (output != null) {
            s.put("output", output);
            s.put("output_sqnr_db", finite(sums.sqnrDb()));
            s.put("output_cosine", sums.meanCosine());
        }
        if (!chosen.skipped().isEmpty()) s.put("outputs_not_compared", chosen.skipped());
        Map<String, Object> others = new LinkedHashMap<>();
        for (String o : chosen.others()) {
            double[] e = sums.layers().get(o);
            if (e == null) continue;
            others.put(o, Map.of("sqnr_db", finite(Sums.sqnr(e[0], e[1])), "cosine", finite(Sums.cosine(e))));
        }
        if (!others.isEmpty()) s.put("other_outputs", others);
        s.put("layer_sqnr_db", layerSqnr(state, pairs, sums));
        s.put("layer_cosine", layerCosine(state, pairs, sums));
        if (!perStage.isEmpty()) s.put("after_each_method", perStage);
        if (!afterEach) s.put("after_each_method_skipped", SKIPPED);
        List<String> warnings = new java.util.ArrayList<>(classWarnings(ctx, chosen.info()));
        if (speed != null) {
            Map<String, Object> sp = new LinkedHashMap<>();
            sp.put("batch", speed.batch());
            sp.put("intra_op_threads", speed.intraOpThreads());
            sp.put("runs", speed.runs());
            sp.put("fp32_ms", speed.fp32Ms());
            sp.put("quantized_ms", speed.quantizedMs());
            sp.put("speedup", speed.speedup());
            s.put("speed", sp);
            // a tensorrt model is placed for TensorRT: ONNX Runtime's CPU speed is reported, not held against it
            if (speed.speedup() < 1 && cfg.export().profile() == io.quantcal.kernels.onnx.QdqProfile.ORT) {
                warnings.add(String.format(java.util.Locale.ROOT, "the quantized model runs slower than FP32 on this machine"
                        + " (%.2fx, batch %d, %d thread(s)): ONNX Runtime's integer kernels do not pay off here for this model;"
                        + " measure on the deployment CPU (deploy/quantcal-bench qdq MODEL)", speed.speedup(), speed.batch(),
                        speed.intraOpThreads()));
            }
        }
        String cpu = saturationWarning(ctx.config());
        if (cpu != null) warnings.add(cpu);
        for (String w : warnings) ctx.out().println("evaluate: warning: " + w);
        if (!warnings.isEmpty()) s.put("warnings", warnings);
        chosen.skipped().forEach((name, why) -> ctx.out().printf("evaluate: output %s not compared: %s%n", name, why));
        others.forEach((name, v) -> {
            Map<?, ?> m = (Map<?, ?>) v;
            ctx.out().printf("evaluate: output %s: SQNR %s dB, cosine %s%n", name, fmt(m.get("sqnr_db"), "%.2f"),
                    fmt(m.get("cosine"), "%.5f"));
        });
        if (output == null) {
            ctx.out().printf("evaluate: %d samples; no output compared (%s); the layers' SQNR is in run.json and the report%n",
                    sums.samples(), chosen.why());
        } else if (notClasses != null) {
            ctx.out().printf("evaluate: %d samples; top-1 n/a (%s); output SQNR %s, cosine %.5f%n", sums.samples(),
                    notClasses, db(sums.sqnrDb()), sums.meanCosine());
        } else {
            ctx.out().printf("evaluate: %d samples; top-1 FP32 %s, quantized %s; agreement %.2f%%; output SQNR %s, cosine %.5f%n",
                    sums.samples(), pct(sums.fpAccuracy()), pct(sums.quantAccuracy()), 100 * sums.agreement(), db(sums.sqnrDb()),
                    sums.meanCosine());
        }
        if (speed != null) {
            ctx.out().printf("evaluate: speed on this machine (ONNX Runtime, batch %d, %d intra-op thread(s), median of %d runs"
                    + " each): FP32 %.3f ms, quantized %.3f ms: %.2fx%n", speed.batch(), speed.intraOpThreads(), speed.runs(),
                    speed.fp32Ms(), speed.quantizedMs(), speed.speedup());
        }
        return state.withQdq(qdq).withSummary(name(), s);
    }

    /** What {@link #compare} found, and in how many passes over the data (more than 1: its layers went in groups). */
    record Compared(Sums sums, int passes) {

        /**
         * The graph output evaluate compares (null: none can be), the others it leaves out with why, and, when none
         * is compared, why.
         */
        record Output(String name, io.quantcal.kernels.onnx.TensorInfo info, Map<String, String> skipped, String why,
                      List<String> others) {}
    }

    /**
     * The output evaluate compares: the model's first float32 output whose shape follows from the input shapes. An
     * output whose shape depends on the data (a detector's boxes after NonMaxSuppression: the FP32 and the quantized
     * model keep different boxes) cannot be compared element by element, and a non-float one (labels, indices) has no
     * SQNR; each such output before the chosen one is named with its reason.
     */
    static Compared.Output comparedOutput(OnnxModel fp) {
        return comparedOutput(fp, io.quantcal.kernels.onnx.DataDependentShapes.of(fp));
    }

    /** {@link #comparedOutput(OnnxModel)} with the model's data-dependent tensors ({@code DataDependentShapes.of}). */
    static Compared.Output comparedOutput(OnnxModel fp, Map<String, String> dynamic) {
        Map<String, String> skipped = new LinkedHashMap<>();
        io.quantcal.kernels.onnx.TensorInfo chosen = null;
        List<String> others = new ArrayList<>();
        for (io.quantcal.kernels.onnx.TensorInfo o : fp.outputs()) {
            if (o.elementType() != onnx.Onnx.TensorProto.DataType.FLOAT_VALUE && o.elementType() != 0) {
                String t = io.quantcal.kernels.runtime.ElementType.onnxName(o.elementType());
                skipped.put(o.name(), (t.startsWith("int") ? "an " : "a ") + t + " tensor, not float32 values");
            } else if (dynamic.containsKey(o.name())) {
                skipped.put(o.name(), "its shape depends on the data (" + dynamic.get(o.name()) + "): the FP32 and the"
                        + " quantized model can return different numbers of values for the same samples");
            } else if (chosen == null) {
                chosen = o;
            } else {
                others.add(o.name()); // compared too: SQNR and cosine over the whole data
            }
        }
        if (chosen != null) return new Compared.Output(chosen.name(), chosen, skipped, null, others);
        return new Compared.Output(null, null, skipped, "every output is data-dependent or not float32: "
                + String.join(", ", skipped.keySet()), others);
    }

    /**
     * FP32 against {@code quant} over the evaluation data, one task per partition, merged in partition order; in
     * groups of layers, one pass each, when one sample's layer outputs exceed the memory budget.
     *
     * @param qLayers the layers' outputs in {@code quant}, position by position with {@code layers}
     * @param which   {@code quant} in an error message ("its QDQ model")
     */
    private static Compared compare(JavaRDD<Sample> samples, BroadcastModel fpModel, OnnxModel quant, BroadcastModel qModel,
                                    List<String> layers, List<String> qLayers, ModelInputs input, String output,
                                    RunnerOptions opts, BatchBudget batch, boolean skipBad, String which, String doing) {
        try {
            return new Compared(compareOnce(samples, fpModel, quant, qModel, layers, qLayers, input, output, opts, batch, skipBad, which, doing), 1);
        } catch (OverBudget over) {
            // one sample's layer outputs exceed the budget: compare the layers in groups that fit, one pass over the
            // data each; the output's sums come from the first pass, each layer's from the pass that captured it
            List<List<String>> groups = over.groups(layers, batch, fpModel.displayName() + " and " + which);
            LOG.info("evaluate: one sample's {} layer outputs of both models exceed the memory budget of {} per task:"
                    + " comparing them in {} groups, one pass over the data each", layers.size(),
                    BatchBudget.mib(batch.budgetBytes()), groups.size());
            Sums first = null;
            Map<String, double[]> perLayer = new LinkedHashMap<>();
            for (List<String> g : groups) {
                // a session of their own per group for both models: the previous ones' arenas go first
                fpModel.closeSessions();
                qModel.closeSessions();
                List<String> gq = new ArrayList<>();
                for (String l : g) gq.add(qLayers.get(layers.indexOf(l)));
                Sums s = compareOnce(samples, fpModel, quant, qModel, g, gq, input, output, opts, batch, skipBad, which, doing);
                if (first == null) first = s;
                perLayer.putAll(s.layers());
            }
            return new Compared(first.withLayers(perLayer), groups.size());
        }
    }

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(EvaluatePass.class);

    /** A task's sums; or, when one sample's outputs exceeded the budget, what each layer pair took (sums null). */
    record Part(Sums sums, OverBudget.Sizes over) implements java.io.Serializable {}

    private static Sums compareOnce(JavaRDD<Sample> samples, BroadcastModel fpModel, OnnxModel quant, BroadcastModel qModel,
                                    List<String> layers, List<String> qLayers, ModelInputs input, String output,
                                    RunnerOptions opts, BatchBudget batch, boolean skipBad, String which, String doing) {
        List<Tuple2<Integer, Part>> parts;
        try {
            parts = new ArrayList<>(samples.mapPartitionsWithIndex((pid, it) -> TaskMemory.guard("evaluate", doing, () -> {
                SamplePartitions.Streamed good = SamplePartitions.stream(it, skipBad);
                try (var a = fpModel.lease(layers, opts); var b = qModel.lease(qLayers, opts)) {
                    Sums s = ModelComparison.compare(a.runner(), b.runner(), input, output, labelled(good), batch,
                            fpModel.displayName() + " and " + which + ", " + layers.size() + " layer outputs each", layers,
                            qLayers);
                    return List.of(new Tuple2<>(pid, new Part(s, null))).iterator();
                } catch (io.quantcal.kernels.calib.CaptureOverBudget e) {
                    return List.of(new Tuple2<>(pid, new Part(null, OverBudget.Sizes.of(e)))).iterator();
                }
            }), true).collect());
        } finally {
            // local mode runs the tasks in this JVM: release the quantized model's ONNX Runtime arena now
            io.quantcal.kernels.runtime.SessionCache.evict(quant.sha256());
        }
        parts.sort(Comparator.comparing(Tuple2::_1));
        for (Tuple2<Integer, Part> p : parts) if (p._2().over() != null) throw new OverBudget(p._2().over());
        Sums sums = Sums.empty();
        for (Tuple2<Integer, Part> p : parts) sums = sums.merge(p._2().sums());
        return sums;
    }

    /** At most this many evaluation samples make the batch {@link #speed} times. */
    static final int SPEED_BATCH = 8;

    /**
     * FP32 against the QDQ model on the driver, as deployed ({@link InferenceSpeed}): one batch of the first good
     * evaluation samples (at most {@link #SPEED_BATCH}, or the model's fixed batch), about a second of runs.
     */
    private static InferenceSpeed.Result speed(JavaRDD<Sample> samples, OnnxModel fp, OnnxModel qdq, ModelInputs input,
                                               RunnerOptions opts) {
        int n = input.runBatch(SPEED_BATCH);
        List<Sample> first = samples.filter(Sample::ok).take(n);
        if (first.isEmpty()) return null;
        Map<String, io.quantcal.kernels.runtime.InputTensor> b = input.stack(first.stream().map(Sample::inputs).toList());
        return InferenceSpeed.measure(fp, qdq, b, first.size(), opts, 1_000_000_000L, 5, 500);
    }

    /** Each quantized layer's output SQNR (dB) against FP32, by node. */
    private static Map<String, Object> layerSqnr(PipelineState state, LayerTensors pairs, Sums sums) {
        Map<String, Object> perLayer = new LinkedHashMap<>();
        List<QuantizableNode> nodes = state.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            double[] e = sums.layers().get(pairs.fp().get(i));
            if (e == null) {
                perLayer.put(nodes.get(i).name(), "n/a: its output's shape depends on the data");
                continue;
            }
            perLayer.put(nodes.get(i).name(), finite(Sums.sqnr(e[0], e[1])));
        }
        return perLayer;
    }

    /** Each quantized layer's output cosine against FP32 over all the evaluation data, by node. */
    private static Map<String, Object> layerCosine(PipelineState state, LayerTensors pairs, Sums sums) {
        Map<String, Object> perLayer = new LinkedHashMap<>();
        List<QuantizableNode> nodes = state.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            double[] e = sums.layers().get(pairs.fp().get(i));
            perLayer.put(nodes.get(i).name(), e == null ? "n/a: its output's shape depends on the data" : finite(Sums.cosine(e)));
        }
        return perLayer;
    }

    /** {@code pairs} without the layers whose FP output has a data-dependent shape. */
    static LayerTensors comparable(LayerTensors pairs, Map<String, String> dynamic) {
        List<String> fp = new ArrayList<>(), q = new ArrayList<>();
        for (int i = 0; i < pairs.fp().size(); i++) {
            if (dynamic.containsKey(pairs.fp().get(i))) continue;
            fp.add(pairs.fp().get(i));
            q.add(pairs.quant().get(i));
        }
        return new LayerTensors(fp, q);
    }

    /** What evaluate compares per layer: the FP model's tensors and the quantized model's, position by position. */
    public record LayerTensors(List<String> fp, List<String> quant) {}

    /**
     * Each layer's output as the next layers receive it. Where the quantized model quantizes it (a QuantizeLinear
     * reads the layer's output after its activation, and a DequantizeLinear reads that): the FP model's output after
     * the activation against that DequantizeLinear's output, as ONNX Runtime's own QDQ debugging matches activations.
     * That also leaves ONNX Runtime free to fuse the layer into its integer kernel: capturing the float output of a
     * Conv it would fuse made it run the layer in float (ResNet-18's QDQ model at 224×224, batch 8: 252 ms against
     * 60 with the DequantizeLinear outputs captured, 46 with none). Elsewhere (the `tensorrt` profile quantizes layer
     * inputs only): the layer's output before its activation in both, named after the activation in the quantized
     * model where the export folded the activation into the output's quantization.
     */
    public static LayerTensors layerTensors(OnnxModel quant, List<QuantizableNode> nodes) {
        Map<String, onnx.Onnx.NodeProto> quantizes = new java.util.HashMap<>(), dequantizes = new java.util.HashMap<>();
        Map<String, String> flattened = new java.util.HashMap<>();
        for (onnx.Onnx.NodeProto n : quant.graph().getNodeList()) {
            if (n.getInputCount() == 0) continue;
            if (n.getOpType().equals("QuantizeLinear")) quantizes.putIfAbsent(n.getInput(0), n);
            if (n.getOpType().equals("DequantizeLinear")) dequantizes.putIfAbsent(n.getInput(0), n);
            if (n.getOpType().equals("Flatten")) flattened.put(n.getInput(0), n.getOutput(0));
        }
        // a classifier written as a 1×1 Conv (the ort export) flattens its output codes before their DequantizeLinear
        for (var e : flattened.entrySet()) {
            onnx.Onnx.NodeProto dq = dequantizes.get(e.getValue());
            if (dq != null) dequantizes.putIfAbsent(e.getKey(), dq);
        }
        List<String> fp = new ArrayList<>(), q = new ArrayList<>();
        for (QuantizableNode n : nodes) {
            String after = n.activationOutput() != null ? n.activationOutput() : n.output();
            onnx.Onnx.NodeProto ql = quantizes.get(after);
            onnx.Onnx.NodeProto dql = ql == null ? null : dequantizes.get(ql.getOutput(0));
            if (dql != null) {
                fp.add(after);
                q.add(dql.getOutput(0));
            } else {
                fp.add(n.output());
                q.add(quant.hasTensor(n.output()) || n.activationOutput() == null ? n.output() : n.activationOutput());
            }
        }
        return new LayerTensors(List.copyOf(fp), List.copyOf(q));
    }

    /** The samples with their labels, one at a time (a static method: a class made here would capture the pass). */
    private static java.util.Iterator<Labelled> labelled(java.util.Iterator<Sample> good) {
        return new java.util.Iterator<>() {
            @Override
            public boolean hasNext() {
                return good.hasNext();
            }

            @Override
            public Labelled next() {
                Sample x = good.next();
                return new Labelled(x.inputs(), x.label());
            }
        };
    }

    /**
     * The warning for a QDQ model with int8 weights evaluated on a CPU where ONNX Runtime's u8·s8 kernels saturate
     * ({@link io.quantcal.kernels.onnx.CpuFeatures}): the accuracy measured here is below what the table gives and what
     * a CPU with VNNI computes. Null when the export has no such weights or the CPU computes them exactly.
     */
    public static String saturationWarning(io.quantcal.job.config.QuantcalConfig cfg) {
        // integer 8-bit weights in an int8 container: what ExportPass.options makes the exporter write
        io.quantcal.kernels.onnx.QdqOptions o = ExportPass.options(cfg);
        boolean int8Weights = !o.weightsAsQdqPair() && !o.unsignedWeights() && cfg.weights().bits() == 8
                && cfg.weights().symmetric();
        if (!int8Weights || !io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates()) return null;
        return "this CPU has AVX2 without VNNI: ONNX Runtime's u8*s8 kernels add pairs of products in saturating int16 here,"
                + " so the quantized model's accuracy measured here can be lower than its scale table gives (and than a CPU with"
                + " AVX-512 VNNI or AVX-VNNI computes); export.ort-weight-type = uint8 (exact on every CPU) or"
                + " quantization.weights.bits = 7 avoid it";
    }

    /**
     * Classes that do not line up: an evaluation set missing classes the calibration set has (or the reverse), or a
     * class count other than the model's output width. Labels follow the union of both sets' class directories, so
     * the accuracy stays right; the warning says the set is not the one the model was trained for.
     */
    static List<String> classWarnings(RunContext ctx, io.quantcal.kernels.onnx.TensorInfo output) {
        QuantcalConfig cfg = ctx.config();
        List<String> cal = SampleSets.classDirectories(ctx.files(), cfg.calibration());
        List<String> ev = SampleSets.classDirectories(ctx.files(), cfg.evaluation());
        List<String> out = new ArrayList<>();
        if (ev.isEmpty()) return out;
        if (!cal.isEmpty()) {
            List<String> missing = cal.stream().filter(c -> !ev.contains(c)).toList();
            List<String> extra = ev.stream().filter(c -> !cal.contains(c)).toList();
            if (!missing.isEmpty()) {
                out.add("the evaluation data " + cfg.evaluation().path() + " has no class directory for " + missing
                        + " (present in the calibration data); labels follow the union of both sets' classes");
            }
            if (!extra.isEmpty()) {
                out.add("the evaluation data has classes " + extra + " that the calibration data " + cfg.calibration().path()
                        + " lacks");
            }
        }
        long[] shape = output == null ? null : output.shape();
        java.util.Set<String> union = new java.util.TreeSet<>(cal);
        union.addAll(ev);
        int classes = union.size(); // the class index SampleSets labels by, without listing the directories again
        if (shape != null && shape.length == 2 && shape[1] > 0 && shape[1] != classes) {
            out.add("the model's output " + output.name() + " has " + shape[1] + " classes, the data's class"
                    + " directories " + classes);
        }
        return out;
    }

    /**
     * Why top-1 does not apply to the model's first output, or null when it does: class scores are [N, classes]. A
     * detector's map ([N, 1, H, W]) or a sequence's ([N, T, classes]) has no single top-1 per sample, and an argmax
     * over all its values means nothing; its output SQNR and cosine still do. An output of unknown rank is taken
     * as class scores.
     */
    static String notClassScores(OnnxModel fp) {
        return notClassScores(fp.outputs().get(0));
    }

    /** {@link #notClassScores(OnnxModel)} for output {@code out}. */
    static String notClassScores(io.quantcal.kernels.onnx.TensorInfo out) {
        long[] shape = out.shape();
        // [N, 1]: one score per sample (a detector's probability): its arg max is always 0, top-1 would say nothing
        if (shape == null || (shape.length == 2 && shape[1] != 1)) return null;
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) b.append(", ");
            b.append(i == 0 && shape[i] < 0 ? "N" : shape[i] < 0 ? "?" : String.valueOf(shape[i]));
        }
        return "output " + out.name() + " is " + b.append("]") + ", not class scores [N, classes]"
                + (shape.length == 2 ? " (one value per sample)" : "");
    }

    /** An SQNR for the console: "12.34 dB", or n/a for an all-zero FP32 output. */
    private static String db(double v) {
        return Double.isNaN(v) ? "n/a (the FP32 output is all zeros)" : String.format(java.util.Locale.ROOT, "%.2f dB", v);
    }

    private static Object finite(double v) {
        if (Double.isNaN(v)) return "n/a: the FP32 tensor is all zeros";
        return Double.isFinite(v) ? v : (Object) String.valueOf(v);
    }

    /** A summary number in {@code format}, or its text when it is not finite ("NaN", "Infinity"). */
    private static String fmt(Object v, String format) {
        return v instanceof Number n ? String.format(java.util.Locale.ROOT, format, n.doubleValue()) : String.valueOf(v);
    }

    static String pct(double v) {
        return Double.isNaN(v) ? "n/a (no labels)" : String.format("%.2f%%", 100 * v);
    }
}
