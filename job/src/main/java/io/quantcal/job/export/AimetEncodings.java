package io.quantcal.job.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.quantcal.job.table.ScaleRow;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AIMET encodings JSON, version 0.6.1 (dicts keyed by tensor) or 1.0.0 (lists of named objects).
 *
 * <p>AIMET's grid is q ∈ [0, 2^bw − 1] with real value (q + offset)·scale. An ONNX grid with zero point
 * Z maps to offset = −Z for unsigned grids and offset = −Z − 2^(bw−1) for signed ones (symmetric 8-bit:
 * −128). min = offset·scale, max = (2^bw − 1 + offset)·scale.
 */
public final class AimetEncodings {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private AimetEncodings() {}

    public static long offset(ScaleRow r) {
        return r.signed() ? -(long) r.zeroPoint() - (1L << (r.bits() - 1)) : -(long) r.zeroPoint();
    }

    public static String write(List<ScaleRow> rows, String version, boolean perChannelWeights) {
        Map<String, List<ScaleRow>> acts = group(rows, "activation");
        Map<String, List<ScaleRow>> params = group(rows, "weight");
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("version", version);
        if (version.equals("0.6.1")) {
            root.put("activation_encodings", dicts(acts));
            root.put("param_encodings", dicts(params));
            Map<String, Object> args = new LinkedHashMap<>();
            ScaleRow a = acts.values().stream().findFirst().map(l -> l.get(0)).orElse(null);
            ScaleRow w = params.values().stream().findFirst().map(l -> l.get(0)).orElse(null);
            if (a != null) args.put("activation_bitwidth", a.bits());
            if (w != null) args.put("param_bitwidth", w.bits());
            args.put("dtype", "int");
            if (w != null) args.put("is_symmetric", w.symmetric() ? "True" : "False");
            args.put("per_channel_quantization", perChannelWeights ? "True" : "False");
            args.put("quant_scheme", a == null ? "minmax" : a.method());
            root.put("quantizer_args", args);
        } else if (version.equals("1.0.0")) {
            root.put("activation_encodings", lists(acts));
            root.put("param_encodings", lists(params));
        } else {
            throw new IllegalArgumentException("AIMET encodings version " + version + ": expected 0.6.1 or 1.0.0");
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, List<ScaleRow>> group(List<ScaleRow> rows, String role) {
        Map<String, List<ScaleRow>> out = new LinkedHashMap<>();
        for (ScaleRow r : rows) {
            if (r.role().equals(role)) out.computeIfAbsent(r.tensor(), k -> new ArrayList<>()).add(r);
        }
        return out;
    }

    private static Map<String, Object> dicts(Map<String, List<ScaleRow>> byTensor) {
        Map<String, Object> out = new LinkedHashMap<>();
        byTensor.forEach((tensor, rows) -> {
            List<Object> list = new ArrayList<>();
            for (ScaleRow r : rows) {
                long offset = offset(r);
                float scale = (float) r.scale();
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("bitwidth", r.bits());
                e.put("dtype", "int");
                e.put("is_symmetric", r.symmetric() ? "True" : "False");
                e.put("max", (double) ((float) (((1L << r.bits()) - 1 + offset) * (double) scale)));
                e.put("min", (double) ((float) (offset * (double) scale)));
                e.put("offset", offset);
                e.put("scale", (double) scale);
                list.add(e);
            }
            out.put(tensor, list);
        });
        return out;
    }

    private static List<Object> lists(Map<String, List<ScaleRow>> byTensor) {
        List<Object> out = new ArrayList<>();
        byTensor.forEach((tensor, rows) -> {
            ScaleRow first = rows.get(0);
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("name", tensor);
            e.put("dtype", "INT");
            e.put("enc_type", first.channel() >= 0 ? "PER_CHANNEL" : "PER_TENSOR");
            e.put("bw", first.bits());
            e.put("is_sym", first.symmetric());
            e.put("scale", rows.stream().map(r -> (double) (float) r.scale()).toList());
            e.put("offset", rows.stream().map(AimetEncodings::offset).toList());
            out.add(e);
        });
        return out;
    }
}
