package io.quantcal.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.io.OutputDirectory;
import io.quantcal.job.pipeline.ExportPass;
import io.quantcal.job.pipeline.Pass;
import io.quantcal.job.pipeline.PipelineState;
import io.quantcal.job.pipeline.Progress;
import io.quantcal.job.pipeline.RunContext;
import io.quantcal.job.pipeline.ScaleRows;
import io.quantcal.job.report.RunReport;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.job.table.ScaleTable;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.MemoryException;
import java.io.PrintStream;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * One run: read the model, run the configured passes in order, write the scale table, the exports and
 * run.json into a temporary directory, and rename it to the output path when everything is there.
 */
public final class QuantcalJob {

    public static final String SCALE_TABLE = "scale_table";
    public static final String RUN_JSON = "run.json";

    private static final Logger LOG = LoggerFactory.getLogger(QuantcalJob.class);

    private QuantcalJob() {}

    /** What a run produced. */
    public record Result(String runId, String output, List<ScaleRow> rows, Map<String, Object> summary) {}

    public static Result run(QuantcalConfig cfg, PrintStream out) {
        boolean shared = Spark.sessionExists();
        SparkSession spark = Spark.forRun(cfg);
        try {
            return run(spark, cfg, out);
        } finally {
            if (!shared) spark.stop();
        }
    }

    /** A new instance of a known pass ({@link io.quantcal.job.pipeline.PassRegistry}). */
    public static Pass pass(String name) {
        return io.quantcal.job.pipeline.PassRegistry.create(name);
    }

    /**
     * Runs one pass; running out of memory in it (on the driver, or in a task whose error comes back through Spark)
     * becomes a {@link MemoryException} naming the pass and what to lower, which the command line reports with exit
     * code 1.
     */
    static PipelineState runPass(Pass p, RunContext ctx, PipelineState state) {
        try {
            return p.run(ctx, state);
        } catch (OutOfMemoryError e) {
            throw MemoryException.ranOutOfMemory(p.name(), "on the driver", e);
        } catch (MemoryException e) {
            throw e.inPass(p.name());
        } catch (Exception e) {
            // a task's memory error arrives wrapped by Spark (SparkException: Job aborted ..., thrown undeclared)
            for (Throwable t = e.getCause(); t != null && t != t.getCause(); t = t.getCause()) {
                if (t instanceof MemoryException m) throw m.inPass(p.name());
                if (t instanceof OutOfMemoryError oom) throw MemoryException.ranOutOfMemory(p.name(), "in a Spark task", oom);
            }
            throw e;
        }
    }

    /** A run in the given session; its log lines carry the run id ({@link Progress#MDC_RUN}). */
    public static Result run(SparkSession spark, QuantcalConfig given, PrintStream out) {
        String runId = given.runId().isBlank() ? newRunId() : given.runId();
        try (var mdc = MDC.putCloseable(Progress.MDC_RUN, runId)) {
            LOG.info("run {}: model {}, pipeline {}, output {}", runId, given.model(), given.pipeline(), given.outputPath());
            return run(spark, given, runId, out);
        }
    }

    private static Result run(SparkSession spark, QuantcalConfig given, String runId, PrintStream out) {
        long t0 = System.nanoTime();
        HadoopFiles files = new HadoopFiles(spark.sparkContext().hadoopConfiguration());
        // every path once, here, to an absolute URI: tasks on other machines see the same files
        QuantcalConfig cfg = given.resolvedPaths(p -> files.qualify(p).toString());
        List<Pass> passes = cfg.pipeline().stream().map(QuantcalJob::pass).toList();
        String modelName = new Path(cfg.model()).getName();
        byte[] bytes = files.readBytes(cfg.model());
        Path modelDir = files.qualify(cfg.model()).getParent();
        List<String> externalData = new java.util.ArrayList<>();
        OnnxModel model = OnnxModel.parse(cfg.model(), bytes, new io.quantcal.kernels.onnx.ExternalDataResolver() {
            /** The file at {@code loc}, noted among the model's inputs (an output may not replace them). */
            private String file(String loc) throws java.io.IOException {
                String file = externalDataFile(modelDir, loc);
                if (!externalData.contains(file)) externalData.add(file);
                return file;
            }

            @Override
            public byte[] read(String loc) throws java.io.IOException {
                return files.readBytes(file(loc));
            }

            @Override
            public byte[] read(String loc, long offset, long length) throws java.io.IOException {
                // one tensor's range: a data file may be larger than a Java array
                return files.readRange(file(loc), offset, length);
            }
        });

        checkOutputApartFromInputs(files, given, externalData);
        // a float16 model (weights, casts, maybe its inputs) as the float32 model it stands for: quantcal quantizes
        // from float32 (the model's sha256 in the table stays the given file's)
        io.quantcal.kernels.onnx.Float16Upcast.Result upcast = io.quantcal.kernels.onnx.Float16Upcast.rewrite(model);
        // inputs always fed one value (quantcal.input-values) become constants: an If on them runs its branch inline
        OnnxModel fixedInputs = upcast.model();
        for (Map.Entry<String, double[]> v : cfg.inputs().valueArrays().entrySet()) {
            try {
                fixedInputs = io.quantcal.kernels.onnx.InputValues.fix(fixedInputs, v.getKey(), v.getValue());
            } catch (IllegalArgumentException e) {
                throw new io.quantcal.job.config.ConfigException(com.typesafe.config.ConfigUtil.joinPath("quantcal",
                        "input-values", v.getKey()) + ": " + e.getMessage() + " (model " + cfg.model() + ")");
            }
        }
        io.quantcal.kernels.onnx.IfInlining.Result ifs = io.quantcal.kernels.onnx.IfInlining.inline(fixedInputs);
        // the model's inputs against the data config (names, element types, shapes, fixed batch): before any work
        io.quantcal.job.data.InputBinding.check(ifs.model(), cfg);
        OutputDirectory output = OutputDirectory.begin(files, cfg.outputPath(), cfg.overwrite(), runId,
                line -> out.println("output: " + line));
        RunContext ctx = new RunContext(spark, cfg, files, output, runId, out);
        try {
            // the front end: weights behind Identity/Constant/Cast/Reshape/... become initializers, shared ones are
            // copied per consumer; then every Conv/Gemm/MatMul is either quantized or reported with its reason
            if (!cfg.inputs().values().isEmpty()) {
                out.printf("model: input%s %s fixed to %s (quantcal.input-values): the exported models no longer take %s%n",
                        cfg.inputs().values().size() == 1 ? "" : "s", cfg.inputs().values().keySet(),
                        cfg.inputs().values().values(), cfg.inputs().values().size() == 1 ? "it" : "them");
            }
            if (!ifs.inlined().isEmpty()) {
                out.printf("model: %d If with a constant condition replaced by the branch it takes %s%n", ifs.inlined().size(),
                        ifs.inlined());
            }
            // Einsums that are matrix products (MaxViT's attention): the MatMuls they compute, which quantcal quantizes
            io.quantcal.kernels.onnx.EinsumAsMatMul.Result einsums = io.quantcal.kernels.onnx.EinsumAsMatMul.rewrite(ifs.model());
            if (!einsums.rewritten().isEmpty()) {
                out.printf("model: %d Einsum that %s matrix product%s written as MatMul%n", einsums.rewritten().size(),
                        einsums.rewritten().size() == 1 ? "is a" : "are", einsums.rewritten().size() == 1 ? "" : "s");
            }
            io.quantcal.kernels.onnx.ConstantFolder.Result folded = io.quantcal.kernels.onnx.ConstantFolder.fold(einsums.model());
            if (model.upgradedFrom() > 0) {
                out.printf("model: opset %d raised to %d (ONNX version-converter rules)%n", model.upgradedFrom(), model.opset());
            }
            Map<String, Integer> inlined = model.inlinedFunctions();
            if (!inlined.isEmpty()) {
                int calls = inlined.values().stream().mapToInt(Integer::intValue).sum();
                out.printf("model: %d call%s of %d local function%s expanded into the graph %s%n", calls,
                        calls == 1 ? "" : "s", inlined.size(), inlined.size() == 1 ? "" : "s", inlined);
            }
            uint8Images(upcast.model(), cfg, out);
            if (upcast.changed()) {
                out.printf("model: computes in float16/bfloat16; taken as the float32 model of the same values (%d"
                        + " 16-bit float tensors, %d Casts to them, %d declared values raised to float32): evaluate and the"
                        + " exports start from it%n", upcast.tensors(), upcast.casts(), upcast.values());
            }
            if (folded.foldedNodes() > 0 || !folded.unshared().isEmpty()) {
                out.printf("model: %d constant nodes folded into initializers %s; %d shared weights copied per consumer%n",
                        folded.foldedNodes(), folded.foldedByOp(), folded.unshared().size());
            }
            if (!folded.initializerInputs().isEmpty()) {
                out.printf("model: %d initializers were also listed as graph inputs (IR < 4, or torch.onnx's"
                        + " keep_initializers_as_inputs): read as the constants they hold, and inputs no more%n",
                        folded.initializerInputs().size());
            }
            if (!folded.evaluated().isEmpty()) {
                out.printf("model: %d weight%s computed from constants (%s) evaluated once by ONNX Runtime, as it folds"
                        + " them itself: %s%n", folded.evaluated().size(), folded.evaluated().size() == 1 ? "" : "s",
                        folded.evaluatedByOp(), folded.evaluated());
            }
            // a ReduceMean over H, W is the GlobalAveragePool it computes: a pooling op the ort profile runs on integers
            // Gemm's alpha and beta multiplied into its constants: the Gemm quantcal quantizes
            io.quantcal.kernels.onnx.GemmScalars.Result gemms = io.quantcal.kernels.onnx.GemmScalars.rewrite(folded.model());
            if (!gemms.rewritten().isEmpty()) {
                out.printf("model: %d Gemm with alpha or beta other than 1 written with the scalars in its weight and bias %s%n",
                        gemms.rewritten().size(), gemms.rewritten());
            }
            if (!gemms.transposedA().isEmpty()) {
                out.printf("model: %d Gemm with transA = 1 reading its input through a Transpose %s%n",
                        gemms.transposedA().size(), gemms.transposedA());
            }
            io.quantcal.kernels.onnx.SpatialMeanAsPool.Result means = io.quantcal.kernels.onnx.SpatialMeanAsPool.rewrite(gemms.model());
            if (!means.rewritten().isEmpty()) {
                out.printf("model: %d ReduceMean over the spatial axes written as GlobalAveragePool%n", means.rewritten().size());
            }
            // explicit Pads the next op does itself: no Pad in float between two quantized ops
            io.quantcal.kernels.onnx.PadFolding.Result padded = io.quantcal.kernels.onnx.PadFolding.rewrite(means.model());
            if (!padded.removed().isEmpty() || !padded.folded().isEmpty()) {
                out.printf("model: %d Pads of nothing removed, %d zero Pads made part of the Conv or AveragePool reading them%n",
                        padded.removed().size(), padded.folded().size());
            }
            // HardSwish as x · HardSigmoid(x): its definition, which the ort profile runs on integers
            io.quantcal.kernels.onnx.HardSwishDecomposition.Result swish =
                    io.quantcal.kernels.onnx.HardSwishDecomposition.rewrite(padded.model());
            if (!swish.rewritten().isEmpty()) {
                out.printf("model: %d HardSwish written as x * HardSigmoid(x)%n", swish.rewritten().size());
            }
            if (!swish.handWritten().isEmpty()) {
                out.printf("model: %d hand-written hard-sigmoid gates (Add 3, Clip 0..6, /6) written as HardSigmoid%n",
                        swish.handWritten().size());
            }
            OnnxModel excludedModel = excluded(swish.model(), cfg.exclude());
            // W · x with a constant W: (xᵀ · Wᵀ)ᵀ, the MatMul quantcal quantizes (a node excluded by config stays as it is)
            io.quantcal.kernels.onnx.ConstantFirstMatMul.Result constantFirst =
                    io.quantcal.kernels.onnx.ConstantFirstMatMul.rewrite(excludedModel);
            if (!constantFirst.rewritten().isEmpty()) {
                out.printf("model: %d MatMul W * x with a constant first operand written as (x^T * W^T)^T, its constant a"
                        + " weight %s%n", constantFirst.rewritten().size(), constantFirst.rewritten());
            }
            OnnxModel front = constantFirst.model();
            List<io.quantcal.kernels.onnx.Coverage.Entry> coverage = io.quantcal.kernels.onnx.Coverage.of(front);
            long covered = coverage.stream().filter(io.quantcal.kernels.onnx.Coverage.Entry::quantized).count();
            out.printf("coverage: %d of %d Conv/ConvTranspose/Gemm/MatMul nodes quantized%n", covered, coverage.size());
            for (var e : coverage) {
                if (!e.quantized()) out.printf("  FP32 %s %s: %s%n", e.opType(), e.node(), e.reason());
                else if (e.reason() != null) out.printf("  activations only %s %s: %s%n", e.opType(), e.node(), e.reason());
            }
            // LSTM/GRU/RNN, Einsum with a weight, ONNX Runtime's fused contrib ops: layers with weights left in FP32
            List<io.quantcal.kernels.onnx.Coverage.Entry> otherLayers = io.quantcal.kernels.onnx.Coverage.otherLayers(front);
            if (!otherLayers.isEmpty()) {
                out.printf("coverage: %d other layer%s with weights (%s) stay%s FP32%n", otherLayers.size(),
                        otherLayers.size() == 1 ? "" : "s", otherLayers.stream().map(e -> e.opType()).distinct()
                                .collect(java.util.stream.Collectors.joining(", ")), otherLayers.size() == 1 ? "s" : "");
                for (var e : otherLayers) out.printf("  FP32 %s %s: %s%n", e.opType(), e.node(), e.reason());
            }
            // a model ONNX Runtime rejects stops here, on the driver, with one error, not in every task at once
            io.quantcal.kernels.runtime.ModelRunner.checkLoads(front);
            PipelineState state = PipelineState.initial(modelName, model.sha256(), front);
            Map<String, Object> timings = new LinkedHashMap<>();
            Map<String, Object> sessionPeaks = new LinkedHashMap<>();
            io.quantcal.kernels.runtime.SessionCache.maxSessions(cfg.maxSessions());
            for (Pass p : passes) {
                long t = System.nanoTime();
                ctx.progress().beginPass(p.name());
                io.quantcal.kernels.runtime.SessionCache.resetPeak();
                try {
                    state = runPass(p, ctx, state);
                    // kept for evaluate's per-method passes only when it makes them
                    if (cfg.evaluateAfterEachMethod()) ctx.report().stage(p.name(), state);
                } finally {
                    ctx.progress().endPass();
                }
                timings.put(p.name(), (System.nanoTime() - t) / 1_000_000);
                sessionPeaks.put(p.name(), io.quantcal.kernels.runtime.SessionCache.peak());
            }
            List<ScaleRow> rows = ScaleRows.of(state, runId, ExportPass.options(cfg).quantizeBias()).stream()
                    .sorted(ScaleTable.order(state.model().nodes().stream().map(n -> n.getName()).toList())).toList();
            ctx.progress().beginPass("write");
            ctx.progress().step("write scale_table (" + rows.size() + " rows)");
            if (!rows.isEmpty()) ScaleTable.write(spark, rows, output.resolve(SCALE_TABLE));

            Map<String, Object> run = new LinkedHashMap<>();
            run.put("run_id", runId);
            run.put("model", cfg.model());
            run.put("model_sha256", state.modelSha256());
            run.put("output", output.finalPath());
            run.put("quantizable_layers", state.nodes().size());
            Map<String, Object> frontEnd = new LinkedHashMap<>();
            if (model.upgradedFrom() > 0) frontEnd.put("opset_upgraded_from", model.upgradedFrom());
            if (!model.inlinedFunctions().isEmpty()) frontEnd.put("functions_inlined", model.inlinedFunctions());
            if (upcast.changed()) {
                frontEnd.put("float16_upcast", Map.of("tensors", upcast.tensors(), "casts", upcast.casts(),
                        "values", upcast.values()));
            }
            frontEnd.put("input_values", cfg.inputs().values());
            frontEnd.put("ifs_inlined", ifs.inlined());
            frontEnd.put("einsums_as_matmul", einsums.rewritten());
            frontEnd.put("folded_nodes", folded.foldedNodes());
            frontEnd.put("folded_by_op", folded.foldedByOp());
            frontEnd.put("weights_copied_per_consumer", folded.unshared());
            frontEnd.put("weights_evaluated", folded.evaluated());
            frontEnd.put("initializers_listed_as_inputs", folded.initializerInputs());
            frontEnd.put("gemm_scalars_folded", gemms.rewritten());
            frontEnd.put("gemm_transa_transposed", gemms.transposedA());
            frontEnd.put("spatial_means_as_pool", means.rewritten());
            frontEnd.put("pads_removed", padded.removed());
            frontEnd.put("pads_folded", padded.folded());
            frontEnd.put("constant_first_matmuls", constantFirst.rewritten());
            frontEnd.put("hard_swish_decomposed", swish.rewritten());
            frontEnd.put("hard_sigmoid_recognised", swish.handWritten());
            run.put("front_end", frontEnd);
            Map<String, Object> cov = new LinkedHashMap<>();
            cov.put("nodes", coverage.size());
            cov.put("quantized", covered);
            cov.put("fp32", fp32Entries(coverage));
            cov.put("other_layers_fp32", fp32Entries(otherLayers));
            run.put("coverage", cov);
            run.put("scale_table_rows", rows.size());
            run.put("versions", versions(spark));
            // the driver's CPU, where local runs evaluate: whether ONNX Runtime's u8·s8 kernels are exact on it
            Map<String, Object> cpu = new LinkedHashMap<>();
            cpu.put("os_arch", System.getProperty("os.arch"));
            cpu.put("onnxruntime_u8s8_exact", !io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates());
            run.put("driver_cpu", cpu);
            run.put("timings_ms", timings);
            run.put("onnx_sessions", onnxSessions(cfg, sessionPeaks));
            run.put("calibration_samples_decoded", ctx.samples().decoded());
            run.put("calibration_samples_read", ctx.samples().read());
            run.put("passes", state.summary());
            run.put("config", new ObjectMapper().readValue(cfg.rendered(), Map.class));
            long total = (System.nanoTime() - t0) / 1_000_000;
            run.put("wall_ms", total);
            // credentials (spark.conf secrets, user:password in URIs) never reach the files
            io.quantcal.job.config.Redaction redaction = io.quantcal.job.config.Redaction.of(cfg.sparkConf());
            String report = report(redaction.redact(run), state, coverage, ctx);
            run.put("report", report != null ? RunReport.FILE : "not written (see the log)");
            run = redaction.redact(run);
            files.writeText(output.resolve(RUN_JSON),
                    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(run) + "\n");
            if (report != null) files.writeText(output.resolve(RunReport.FILE), report);
            output.commit();
            LOG.info("run {} done in {} ms: {}", runId, total, output.finalPath());
            printSummary(out, given, state, rows, output.finalPath(), total, report != null);
            return new Result(runId, output.finalPath(), rows, run);
        } catch (RuntimeException e) {
            output.abort();
            throw e;
        } catch (Exception e) {
            output.abort();
            throw new IllegalStateException(e.getMessage(), e);
        } finally {
            ctx.progress().endPass();
            ctx.samples().release();
        }
    }

    /**
     * run.json's {@code onnx_sessions}: the bound and, per pass, the most cached ONNX Runtime sessions open at once in
     * the driver's JVM (where local mode's tasks run; a cluster's executors count their own, which the driver does
     * not see) and those still cached when the run ends.
     */
    /**
     * A uint8 image input takes the 8-bit pixels (resize, crop, channels, layout), not the normalised values: says so
     * when the images format's scale, mean or std would have changed them.
     */
    private static void uint8Images(OnnxModel model, QuantcalConfig cfg, PrintStream out) {
        boolean images = cfg.calibration().format().equals("images")
                || cfg.pipeline().contains("evaluate") && cfg.evaluation().format().equals("images");
        if (!images || model.inputs().size() != 1
                || model.inputs().get(0).elementType() != io.quantcal.kernels.runtime.ElementType.UINT8.onnx()) return;
        var p = cfg.preprocess();
        boolean identity = p.scale() == 1;
        for (double m : p.mean()) identity &= m == 0;
        for (double d : p.std()) identity &= d == 1;
        out.printf("data: model input %s is uint8: the images are fed as their 8-bit pixels (resize, crop, channels,"
                + " layout)%s%n", model.inputs().get(0).name(), identity ? "" : "; quantcal.calibration.preprocess scale,"
                + " mean and std are not applied (the model normalises its input itself)");
    }

    /** run.json's {node, op_type, reason} of each coverage entry left in FP32. */
    private static List<Map<String, Object>> fp32Entries(List<io.quantcal.kernels.onnx.Coverage.Entry> entries) {
        List<Map<String, Object>> out = new java.util.ArrayList<>();
        for (var e : entries) {
            if (e.quantized()) continue;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("node", e.node());
            m.put("op_type", e.opType());
            m.put("reason", e.reason());
            out.add(m);
        }
        return out;
    }

    static Map<String, Object> onnxSessions(QuantcalConfig cfg, Map<String, Object> peaks) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("max_sessions", cfg.maxSessions());
        m.put("peak_per_pass", peaks);
        m.put("cached_at_end", io.quantcal.kernels.runtime.SessionCache.size());
        m.put("scope", "the driver's JVM: every task in local mode; on a cluster each executor bounds its own, uncounted here");
        return m;
    }

    /**
     * report.html's text, or null when it cannot be drawn: the report shows the run, it is not what the run is for, so
     * a failure to draw it is logged and said on the console, and the scale table and exports still land.
     */
    static String report(Map<String, Object> run, PipelineState state, List<io.quantcal.kernels.onnx.Coverage.Entry> coverage,
                         RunContext ctx) {
        try {
            return RunReport.html(run, state, coverage, ctx.report());
        } catch (RuntimeException | LinkageError e) {
            LOG.warn("report.html not written", e);
            ctx.out().println("report: " + RunReport.FILE + " not written: " + e);
            return null;
        }
    }

    /**
     * Before any work: the output, and the AdaRound resume cache beside it, must not be, contain or lie inside
     * anything the run reads (the model and its external data, the calibration and evaluation data, the config file).
     */
    static void checkOutputApartFromInputs(HadoopFiles files, QuantcalConfig cfg, List<String> externalData) {
        io.quantcal.job.io.PathOverlap overlap = new io.quantcal.job.io.PathOverlap(files)
                .input("the model (quantcal.model)", cfg.model());
        for (String f : externalData) overlap.input("the model's external data file", f);
        overlap.input("the calibration data (quantcal.calibration.path)", cfg.calibration().path());
        overlap.input("the calibration labels file (quantcal.calibration.labels)", cfg.calibration().labelsFile());
        if (cfg.pipeline().contains("evaluate")) {
            overlap.input("the evaluation data (quantcal.evaluation.path)", cfg.evaluation().path());
            overlap.input("the evaluation labels file (quantcal.evaluation.labels)", cfg.evaluation().labelsFile());
        }
        if (cfg.source() != null && files.exists(cfg.source())) overlap.input("the config file", cfg.source());
        overlap.check("quantcal.output.path", cfg.outputPath());
        if (cfg.pipeline().contains("adaround")) {
            overlap.checkApartFromInputs("the AdaRound resume cache beside quantcal.output.path,", adaroundCache(files, cfg));
        } else if (cfg.pipeline().contains("learn")) {
            overlap.checkApartFromInputs("the learn resume cache beside quantcal.output.path,", adaroundCache(files, cfg));
        }
    }

    /** The model with the configured nodes and op types left in FP32; a name that is no Conv/Gemm/MatMul is an error. */
    static OnnxModel excluded(OnnxModel m, QuantcalConfig.Exclude ex) {
        if (ex.nodes().isEmpty() && ex.opTypes().isEmpty()) return m;
        java.util.Set<String> names = new java.util.TreeSet<>();
        java.util.Set<String> candidates = new java.util.LinkedHashSet<>();
        for (var n : m.nodes()) {
            if (!io.quantcal.kernels.onnx.QuantizableNode.OP_TYPES.contains(n.getOpType())) continue;
            candidates.add(n.getName());
            if (ex.opTypes().contains(n.getOpType())) names.add(n.getName());
        }
        for (String n : ex.nodes()) {
            if (!candidates.contains(n)) {
                throw new io.quantcal.job.config.ConfigException("quantcal.quantization.exclude.nodes: " + n
                        + " is not a Conv, Gemm or MatMul node of " + m.source() + " (those are " + candidates + ")");
            }
            names.add(n);
        }
        return m.withExcluded(names);
    }

    /** The AdaRound resume cache beside the output, as a qualified path (the same on every executor). */
    public static String adaroundCache(HadoopFiles files, QuantcalConfig cfg) {
        Path p = files.qualify(cfg.outputPath());
        return new Path(p.getParent(), p.getName() + io.quantcal.job.io.PathOverlap.CACHE_SUFFIX).toString();
    }

    /**
     * An external data file: the kernels' rule on the location's text (relative, inside the model's directory), then,
     * on the local file system, the same check after resolving symbolic links.
     */
    static String externalDataFile(Path modelDir, String location) throws java.io.IOException {
        String rel = io.quantcal.kernels.onnx.ExternalDataResolver.insideModelDirectory(location);
        Path file = new Path(modelDir, rel);
        if ("file".equals(file.toUri().getScheme())) {
            java.nio.file.Path dir = java.nio.file.Path.of(modelDir.toUri().getPath()).toRealPath();
            java.nio.file.Path f = java.nio.file.Path.of(file.toUri().getPath());
            if (java.nio.file.Files.exists(f) && !f.toRealPath().startsWith(dir)) {
                throw new java.io.IOException("external data location " + location + " leaves the model directory " + dir
                        + " through a symbolic link (it is " + f.toRealPath() + ")");
            }
        }
        return file.toString();
    }

    static String newRunId() {
        return "qc-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + "-"
                + String.format("%06x", ThreadLocalRandom.current().nextInt(1 << 24));
    }

    static Map<String, String> versions(SparkSession spark) {
        Map<String, String> v = new LinkedHashMap<>();
        v.put("quantcal", version());
        v.put("spark", spark.version());
        v.put("onnxruntime", ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion());
        v.put("java", System.getProperty("java.version"));
        return v;
    }

    public static String version() {
        try (var in = QuantcalJob.class.getResourceAsStream("/quantcal-version.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    @SuppressWarnings("unchecked")
    private static void printSummary(PrintStream out, QuantcalConfig cfg, PipelineState st, List<ScaleRow> rows,
                                     String output, long ms, boolean report) {
        out.printf("%nquantcal run done in %.1f s%n", ms / 1000.0);
        out.printf("  model     %s: %d quantizable layers%n", cfg.model(), st.nodes().size());
        out.printf("  method    W%d %s %s / A%d %s, calibrator %s / %s, export profile %s%n", cfg.weights().bits(),
                cfg.weights().perChannel() ? "per-channel" : "per-tensor", cfg.weights().symmetric() ? "symmetric" : "affine",
                cfg.activations().bits(), cfg.activations().symmetric()
                        || cfg.export().profile().signedSymmetricActivations() ? "symmetric" : "affine",
                cfg.weights().calibrator(), cfg.activations().calibrator(), cfg.export().profile().id());
        Object ev = st.summary().get("evaluate");
        if (ev instanceof Map<?, ?> m && m.containsKey("top1_fp32")) {
            out.printf("  accuracy  top-1 FP32 %.2f%%, quantized %.2f%% (%d samples, agreement %.2f%%)%n",
                    100 * (double) m.get("top1_fp32"), 100 * (double) m.get("top1_quantized"), (long) m.get("samples"),
                    100 * (double) m.get("top1_agreement"));
        } else if (ev instanceof Map<?, ?> m && m.get("top1") instanceof String na && m.get("output_sqnr_db") instanceof Number db) {
            out.printf("  accuracy  output SQNR %.2f dB against FP32 (%d samples; top-1 %s)%n", db.doubleValue(),
                    (long) m.get("samples"), na);
        }
        out.printf("  output    %s%n", output);
        if (!rows.isEmpty()) out.printf("            %s/ (%d rows)%n", SCALE_TABLE, rows.size());
        Object ex = st.summary().get("export");
        if (ex instanceof Map<?, ?> m) {
            for (String k : List.of("qdq_model", "qdq_model_data", "tensorrt_cache", "aimet_encodings")) {
                if (m.containsKey(k)) out.printf("            %s%n", new Path(m.get(k).toString()).getName());
            }
        }
        out.printf("            %s%n", RUN_JSON);
        if (report) out.printf("            %s%n", RunReport.FILE);
    }
}
