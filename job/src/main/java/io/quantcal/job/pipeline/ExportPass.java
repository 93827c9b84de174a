package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.export.AimetEncodings;
import io.quantcal.job.export.TensorRtCache;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QdqExporter;
import io.quantcal.kernels.onnx.QdqOptions;
import io.quantcal.kernels.onnx.QdqProfile;
import io.quantcal.kernels.onnx.QdqPlacement;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code export}: the QDQ ONNX model (ONNX Runtime convention, or TensorRT's with the options), the TensorRT
 * calibration cache and the AIMET encodings, written into the run's output directory.
 */
public final class ExportPass implements Pass {

    public static final String QDQ_MODEL = "model_qdq.onnx";
    public static final String TRT_CACHE = "calibration.cache";
    public static final String AIMET = "encodings.json";

    @Override
    public String name() {
        return "export";
    }

    /** The QDQ options of the export (also those of the partly quantized models AdaRound's quantized inputs come from). */
    public static QdqOptions options(QuantcalConfig cfg) {
        QdqOptions o = cfg.export().profile().options(new QdqOptions(cfg.quantizeBias(), cfg.export().qdqWeightsAsPair(),
                cfg.export().qdqPairPerConsumer()));
        return cfg.export().profile() == QdqProfile.ORT ? o.withUnsignedWeights(cfg.export().ortUnsignedWeights()) : o;
    }

    /**
     * The QDQ options of the partly quantized models the search passes run to capture quantized inputs (EasyQuant's
     * sequential waves, AdaRound's and learn's quantized inputs): the profile's placement and bias, but the weights
     * always as uint8 initializers (the int8 grid + 128) behind a DequantizeLinear, which ONNX Runtime computes exactly
     * on every CPU. With int8 weights its u8·s8 kernels saturate on x86 CPUs without VNNI ({@link
     * io.quantcal.kernels.onnx.CpuFeatures}), and the table would depend on the executors' CPUs.
     */
    public static QdqOptions internalOptions(QuantcalConfig cfg) {
        QdqOptions o = options(cfg);
        return new QdqOptions(o.quantizeBias(), false, o.pairPerConsumer(), true);
    }

    static OnnxModel qdq(QuantcalConfig cfg, PipelineState st) {
        return qdq(cfg, st, QdqPlacement.plan(st.model(), cfg.export().profile()));
    }

    private static OnnxModel qdq(QuantcalConfig cfg, PipelineState st, QdqPlacement placement) {
        if (!st.calibrated()) {
            throw new IllegalStateException("pass export/evaluate needs quantization parameters: put calibrate before it in quantcal.pipeline");
        }
        return QdqExporter.export(st.model(), st.activationParams(), st.weightParams(), st.integerWeights(), options(cfg),
                placement);
    }

    /** {@link io.quantcal.kernels.onnx.QdqExporter#biasOverflow} of node {@code n} when biases are quantized, else 0. */
    static double biasOverflow(QuantcalConfig cfg, PipelineState st, io.quantcal.kernels.onnx.QuantizableNode n) {
        if (!options(cfg).quantizeBias() || !st.calibrated()) return 0;
        return io.quantcal.kernels.onnx.QdqExporter.biasOverflow(st.model(), n, st.activationParams().get(n.input()),
                st.weightParams().get(n.weight()));
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        QuantcalConfig cfg = ctx.config();
        QdqPlacement placement = QdqPlacement.plan(state.model(), cfg.export().profile());
        OnnxModel qdq = qdq(cfg, state, placement);
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("profile", cfg.export().profile().id());
        s.put("quantize_linear_nodes", qdq.nodes().stream().filter(n -> n.getOpType().equals("QuantizeLinear")).count());
        s.put("activations_folded", placement.removed(state.activationParams()).size());
        List<Map<String, Object>> own = new java.util.ArrayList<>();
        for (var n : state.nodes()) {
            double over = biasOverflow(cfg, state, n);
            if (over <= 1) continue;
            own.add(Map.of("node", n.name(), "bias", n.bias(), "needs_int32_range_times", over));
            ctx.out().printf(java.util.Locale.ROOT, "export: warning: node %s runs in float: its bias %s needs %.3g times the"
                    + " int32 range at scale input x weight scale, so it is written at a scale of its own (the table's bias"
                    + " rows) and ONNX Runtime computes the node from the dequantized values instead of an integer kernel%n",
                    n.name(), n.bias(), over);
        }
        if (!own.isEmpty()) s.put("biases_at_own_scale", own);
        List<ScaleRow> rows = ScaleRows.of(state, ctx.runId(), false);
        if (cfg.export().qdq()) {
            String data = ctx.files().writeModel(ctx.output().resolve(QDQ_MODEL), qdq);
            s.put("qdq_model", ctx.output().finalPath(QDQ_MODEL));
            // a QDQ model above 1 GiB of tensor data: its external data file beside it
            if (data != null) s.put("qdq_model_data", ctx.output().finalPath(QDQ_MODEL + ".data"));
        }
        if (cfg.export().tensorRtCache()) {
            ctx.files().writeText(ctx.output().resolve(TRT_CACHE), TensorRtCache.write(rows, cfg.export().tensorRtVersion()));
            s.put("tensorrt_cache", ctx.output().finalPath(TRT_CACHE));
        }
        if (cfg.export().aimet()) {
            ctx.files().writeText(ctx.output().resolve(AIMET),
                    AimetEncodings.write(rows, cfg.export().aimetVersion(), cfg.weights().perChannel()));
            s.put("aimet_encodings", ctx.output().finalPath(AIMET));
        }
        return state.withQdq(qdq).withSummary(name(), s);
    }
}
