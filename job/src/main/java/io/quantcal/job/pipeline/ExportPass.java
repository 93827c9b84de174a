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

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        QuantcalConfig cfg = ctx.config();
        QdqPlacement placement = QdqPlacement.plan(state.model(), cfg.export().profile());
        OnnxModel qdq = qdq(cfg, state, placement);
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("profile", cfg.export().profile().id());
        s.put("quantize_linear_nodes", qdq.nodes().stream().filter(n -> n.getOpType().equals("QuantizeLinear")).count());
        s.put("activations_folded", placement.removed(state.activationParams()).size());
        if (options(cfg).quantizeBias()) {
            List<Map<String, Object>> kept = new java.util.ArrayList<>();
            for (var n : state.nodes()) {
                double over = io.quantcal.kernels.onnx.QdqExporter.biasOverflow(state.model(), n,
                        state.activationParams().get(n.input()), state.weightParams().get(n.weight()));
                if (over <= 1) continue;
                kept.add(Map.of("node", n.name(), "bias", n.bias(), "needs_int32_range_times", over));
                ctx.out().printf(java.util.Locale.ROOT, "export: warning: bias %s of node %s kept in FP32: at scale input x weight"
                        + " scale its largest value needs %.3g times the int32 range (clipped, it would change the layer's"
                        + " output); ONNX Runtime runs this node in float%n", n.bias(), n.name(), over);
            }
            if (!kept.isEmpty()) s.put("biases_kept_fp32", kept);
        }
        List<ScaleRow> rows = ScaleRows.of(state, ctx.runId(), false);
        if (cfg.export().qdq()) {
            ctx.files().writeBytes(ctx.output().resolve(QDQ_MODEL), qdq.toByteArray());
            s.put("qdq_model", ctx.output().finalPath(QDQ_MODEL));
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
