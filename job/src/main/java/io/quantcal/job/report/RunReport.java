package io.quantcal.job.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.quantcal.job.pipeline.PipelineState;
import io.quantcal.job.pipeline.ReportData;
import io.quantcal.job.pipeline.TensorQuant;
import io.quantcal.kernels.onnx.Coverage;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.stats.Histogram;
import io.quantcal.kernels.stats.MinMaxStats;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) beside run.json that shows a
 * run to a person: what was quantized and what was left in FP32 and why, each layer's metrics before and after the
 * methods that ran, each activation's histogram with the chosen clip, one layer's per-channel scales against its
 * weights' ranges, and the evaluation. It reads what the run already has (run.json's content, the final state, the
 * statistics calibrate gathered); it computes nothing of its own beyond arranging it.
 */
public final class RunReport {

    public static final String FILE = "report.html";
    /** At most this many activation histograms are drawn; the others are listed in the table. */
    public static final int MAX_HISTOGRAMS = 48;

    private final StringBuilder b = new StringBuilder();
    private int plots;

    private RunReport() {}

    /**
     * The page.
     *
     * @param run      the run summary as run.json holds it (credentials already redacted)
     * @param state    the state after the last pass
     * @param coverage every Conv/Gemm/MatMul node: quantized or not, and why
     * @param data     what calibrate gathered for the report
     */
    public static String html(Map<String, Object> run, PipelineState state, List<Coverage.Entry> coverage, ReportData data) {
        RunReport r = new RunReport();
        r.page(run, state, coverage, data);
        return r.b.toString();
    }

    private void page(Map<String, Object> run, PipelineState state, List<Coverage.Entry> coverage, ReportData data) {
        Map<String, Object> passes = map(run.get("passes"));
        b.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>quantcal run ")
                .append(esc(str(run.get("run_id")))).append("</title>\n<style>\n").append(CSS).append("</style>\n</head>\n<body>\n");
        b.append("<h1>quantcal run <code>").append(esc(str(run.get("run_id")))).append("</code></h1>\n");
        overview(run);
        coverage(coverage, run);
        layers(state, passes);
        activations(data);
        perChannel(state);
        evaluation(map(passes.get("evaluate")));
        b.append("<section id=\"config\"><h2>Configuration</h2><details><summary>the run's configuration (as run.json has it)"
                + "</summary><pre>").append(esc(json(run.get("config")))).append("</pre></details></section>\n");
        b.append("</body>\n</html>\n");
    }

    private void overview(Map<String, Object> run) {
        b.append("<section id=\"overview\"><table class=\"kv\">\n");
        kv("model", str(run.get("model")));
        kv("model sha256", str(run.get("model_sha256")));
        kv("pipeline", String.join(", ", map(run.get("timings_ms")).keySet()));
        kv("quantizable layers", str(run.get("quantizable_layers")));
        kv("scale table rows", str(run.get("scale_table_rows")));
        kv("output", str(run.get("output")));
        StringBuilder t = new StringBuilder();
        for (var e : map(run.get("timings_ms")).entrySet()) {
            t.append(t.length() == 0 ? "" : ", ").append(e.getKey()).append(' ')
                    .append(String.format(Locale.ROOT, "%.1f s", ((Number) e.getValue()).longValue() / 1000.0));
        }
        kv("time per pass", t.toString());
        if (run.get("wall_ms") instanceof Number n) kv("wall time", String.format(Locale.ROOT, "%.1f s", n.longValue() / 1000.0));
        StringBuilder v = new StringBuilder();
        for (var e : map(run.get("versions")).entrySet()) v.append(v.length() == 0 ? "" : ", ").append(e.getKey()).append(' ').append(e.getValue());
        kv("versions", v.toString());
        b.append("</table></section>\n");
    }

    private void coverage(List<Coverage.Entry> coverage, Map<String, Object> run) {
        long quantized = coverage.stream().filter(Coverage.Entry::quantized).count();
        // run.json's other layers with weights (LSTM/GRU/RNN, ...), which stay FP32
        List<Coverage.Entry> others = new java.util.ArrayList<>();
        if (map(run.get("coverage")).get("other_layers_fp32") instanceof List<?> l) {
            for (Object o : l) {
                Map<String, Object> e = map(o);
                others.add(new Coverage.Entry(str(e.get("node")), str(e.get("op_type")), false, str(e.get("reason"))));
            }
        }
        b.append("<section id=\"coverage\"><h2>Coverage</h2>\n<p>").append(quantized).append(" of ").append(coverage.size())
                .append(" Conv/ConvTranspose/Gemm/MatMul nodes quantized; ").append(coverage.size() - quantized)
                .append(" left in FP32.");
        if (!others.isEmpty()) {
            b.append(" ").append(others.size()).append(" other layer").append(others.size() == 1 ? "" : "s")
                    .append(" with weights (").append(esc(String.join(", ", others.stream().map(Coverage.Entry::opType)
                            .distinct().toList()))).append(") ").append(others.size() == 1 ? "stays" : "stay").append(" FP32.");
        }
        b.append("</p>\n<table>\n<tr><th>node</th><th>op</th><th>status</th><th>why</th></tr>\n");
        List<Coverage.Entry> all = new java.util.ArrayList<>(coverage);
        all.addAll(others);
        for (Coverage.Entry e : all) {
            String status = !e.quantized() ? "FP32" : e.reason() != null ? "activations only" : "quantized";
            b.append("<tr class=\"").append(e.quantized() ? "q" : "fp").append("\"><td>").append(esc(e.node())).append("</td><td>")
                    .append(esc(e.opType())).append("</td><td>").append(status).append("</td><td>")
                    .append(esc(e.reason() == null ? "" : e.reason())).append("</td></tr>\n");
        }
        b.append("</table></section>\n");
    }

    /** Per layer: the table's methods and metrics, and a chart per method that measured before and after. */
    private void layers(PipelineState state, Map<String, Object> passes) {
        List<QuantizableNode> nodes = state.nodes();
        List<String> names = nodes.stream().map(QuantizableNode::name).toList();
        Map<String, Object> eq = map(map(passes.get("easyquant")).get("layers"));
        Map<String, Object> ar = map(map(passes.get("adaround")).get("layers"));
        Map<String, Object> sqnr = map(map(passes.get("evaluate")).get("layer_sqnr_db"));
        b.append("<section id=\"layers\"><h2>Layers</h2>\n");
        if (!state.calibrated()) {
            b.append("<p>No quantization parameters: the pipeline has no calibrate.</p></section>\n");
            return;
        }
        b.append("<p>Each method that ran, with the metric it measured before (baseline: the parameters it started from)"
                + " and after. Output SQNR per layer is evaluate's, of the final quantized model against FP32.</p>\n");
        b.append("<table>\n<tr><th>layer</th><th>op</th><th>weights</th><th>activations</th>");
        if (!eq.isEmpty()) b.append("<th>easyquant cosine before → after</th>");
        if (!ar.isEmpty()) b.append("<th>adaround MSE round-to-nearest → adaround</th>");
        if (!sqnr.isEmpty()) b.append("<th>output SQNR (dB)</th>");
        b.append("</tr>\n");
        for (QuantizableNode n : nodes) {
            TensorQuant w = state.quant().get(n.name() + "/weight");
            TensorQuant a = state.quant().get(n.name() + "/activation");
            b.append("<tr><td>").append(esc(n.name())).append("</td><td>").append(esc(n.opType())).append("</td><td>")
                    .append(w == null ? "" : esc(describe(w))).append("</td><td>").append(a == null ? "" : esc(describe(a)))
                    .append("</td>");
            if (!eq.isEmpty()) {
                Map<String, Object> l = map(eq.get(n.name()));
                b.append("<td>").append(l.isEmpty() ? "" : fmt(l.get("initial_cosine"), "%.6f") + " → "
                        + fmt(l.get("final_cosine"), "%.6f")).append("</td>");
            }
            if (!ar.isEmpty()) {
                Map<String, Object> l = map(ar.get(n.name()));
                b.append("<td>").append(l.isEmpty() ? "" : fmt(l.get("mse_round_to_nearest"), "%.4g") + " → "
                        + fmt(l.get("mse_adaround"), "%.4g")).append("</td>");
            }
            if (!sqnr.isEmpty()) b.append("<td>").append(fmt(sqnr.get(n.name()), "%.2f")).append("</td>");
            b.append("</tr>\n");
        }
        b.append("</table>\n");
        if (!sqnr.isEmpty()) {
            figure("layer-sqnr", Charts.layerBars(id(), "Output SQNR per layer (evaluate)", "SQNR (dB)", names,
                    series("quantized vs FP32", names, sqnr, null), false));
        }
        Map<String, Object> stages = map(map(passes.get("evaluate")).get("after_each_method"));
        Object skipped = map(passes.get("evaluate")).get("after_each_method_skipped");
        if (skipped != null) {
            b.append("<h3>After each method</h3>\n<p>Not measured (").append(esc(str(skipped))).append(").</p>\n");
        }
        if (!stages.isEmpty()) {
            List<String> methods = new ArrayList<>(stages.keySet());
            b.append("<h3>After each method</h3>\n<p>Each layer's output against FP32 over the evaluation data, with the"
                    + " parameters as each method that ran left them (" + esc(String.join(", ", methods)) + "): a method's"
                    + " before is the column to its left (calibrate's is FP32 itself). SQNR in dB; cosine of the layer's"
                    + " outputs over all evaluation samples.</p>\n<table>\n<tr><th>layer</th>");
            for (String m : methods) b.append("<th>after ").append(esc(m)).append(": SQNR / cosine</th>");
            b.append("</tr>\n");
            for (String n : names) {
                b.append("<tr><td>").append(esc(n)).append("</td>");
                for (String m : methods) {
                    Map<String, Object> st = map(stages.get(m));
                    b.append("<td>").append(fmt(map(st.get("layer_sqnr_db")).get(n), "%.2f")).append(" / ")
                            .append(fmt(map(st.get("layer_cosine")).get(n), "%.6f")).append("</td>");
                }
                b.append("</tr>\n");
            }
            b.append("</table>\n");
            Map<String, double[]> sq = new LinkedHashMap<>();
            Map<String, double[]> cos = new LinkedHashMap<>();
            for (String m : methods) {
                Map<String, Object> st = map(stages.get(m));
                sq.putAll(series("after " + m, names, map(st.get("layer_sqnr_db")), null));
                cos.putAll(series("after " + m, names, map(st.get("layer_cosine")), null));
            }
            cos.replaceAll((k, v) -> distance(v));
            figure("method-sqnr", Charts.layerBars(id(), "Layer output SQNR against FP32 after each method (higher is"
                    + " better)", "SQNR (dB)", names, sq, false));
            figure("method-cosine", Charts.layerBars(id(), "Layer output 1 − cosine against FP32 after each method (lower"
                    + " is better)", "1 − cosine (log)", names, cos, true));
        }
        if (!eq.isEmpty()) {
            // 1 − cosine on a log axis: cosines of 0.9990 and 0.9998 differ by a factor of 5 there, not by a hair
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("calibrated (before)", distance(values(names, eq, "initial_cosine")));
            s.put("easyquant (after)", distance(values(names, eq, "final_cosine")));
            figure("easyquant-cosine", Charts.layerBars(id(), "EasyQuant: layer output 1 − cosine before and after (lower is"
                    + " better)", "1 − cosine (log)", names, s, true));
        }
        if (!ar.isEmpty()) {
            Map<String, double[]> s = new LinkedHashMap<>();
            s.put("round to nearest (before)", values(names, ar, "mse_round_to_nearest"));
            s.put("adaround (after)", values(names, ar, "mse_adaround"));
            figure("adaround-mse", Charts.layerBars(id(), "AdaRound: layer output MSE before and after", "MSE (log)",
                    names, s, true));
        }
        b.append("</section>\n");
    }

    private void activations(ReportData data) {
        b.append("<section id=\"activations\"><h2>Activations</h2>\n");
        List<ReportData.Activation> acts = data.activations();
        if (acts.isEmpty()) {
            b.append("<p>No activation statistics: the pipeline has no calibrate.</p></section>\n");
            return;
        }
        String calibrator = acts.get(0).calibrator();
        boolean histograms = acts.stream().anyMatch(x -> x.stats().hasHistogram());
        if (!histograms) {
            b.append("<p>Calibrator <b>").append(esc(calibrator)).append("</b>: one pass over the data gathers each tensor's"
                    + " min and max only, so there are no histograms to show (a percentile, entropy or mse calibrator"
                    + " gathers them). The clip is the observed range, shown below.</p>\n");
        } else {
            b.append("<p>Calibrator <b>").append(esc(calibrator)).append("</b>: each histogram is the merged statistics of"
                    + " the calibration data (log counts); the shaded band between the red lines is the range the"
                    + " quantization grid covers (the clip), the dashed lines the observed min and max.</p>\n");
        }
        b.append("<table>\n<tr><th>tensor</th><th>observed min</th><th>observed max</th><th>clip min</th><th>clip max</th>"
                + "<th>scale</th><th>zero point</th></tr>\n");
        for (ReportData.Activation a : acts) {
            MinMaxStats mm = a.stats().minMax();
            QuantParams p = a.params();
            b.append("<tr><td>").append(esc(a.tensor())).append("</td><td>").append(Charts.num(mm.min())).append("</td><td>")
                    .append(Charts.num(mm.max())).append("</td><td>").append(Charts.num(p.rangeMin(0))).append("</td><td>")
                    .append(Charts.num(p.rangeMax(0))).append("</td><td>").append(Charts.num(p.scale(0))).append("</td><td>")
                    .append(p.zeroPoint(0)).append("</td></tr>\n");
        }
        b.append("</table>\n");
        int drawn = 0;
        for (ReportData.Activation a : acts) {
            if (!a.stats().hasHistogram()) continue;
            if (drawn++ == MAX_HISTOGRAMS) {
                b.append("<p>The other ").append(acts.size() - MAX_HISTOGRAMS).append(" histograms are not drawn (at most ")
                        .append(MAX_HISTOGRAMS).append(" per report); their ranges are in the table.</p>\n");
                break;
            }
            Histogram h = a.stats().histogram();
            MinMaxStats mm = a.stats().minMax();
            figure("histogram", Charts.histogram(id(), a.tensor(), h.spec().lo(), h.spec().hi(), h.counts(),
                    a.params().rangeMin(0), a.params().rangeMax(0), mm.min(), mm.max()));
        }
        b.append("</section>\n");
    }

    /**
     * One layer's weights per output channel: the layer whose channels' ranges differ the most (where per-channel
     * scales matter most), or the first.
     */
    private void perChannel(PipelineState state) {
        b.append("<section id=\"scales\"><h2>Weight scales per channel</h2>\n");
        QuantizableNode best = null;
        double[][] bestRanges = null;
        double bestSpread = -1;
        for (QuantizableNode n : state.nodes()) {
            if (state.quant().get(n.name() + "/weight") == null) continue;
            float[][] ch = io.quantcal.kernels.calib.Channels.split(state.model().initializerFloats(n.weight()),
                    state.model().shape(n.weight()), n.weightAxis());
            double[][] r = new double[2][ch.length];
            double lo = Double.POSITIVE_INFINITY, hi = 0;
            for (int c = 0; c < ch.length; c++) {
                MinMaxStats mm = MinMaxStats.of(ch[c]);
                r[0][c] = mm.min();
                r[1][c] = mm.max();
                double width = mm.max() - mm.min();
                lo = Math.min(lo, width);
                hi = Math.max(hi, width);
            }
            double spread = ch.length < 2 ? 0 : lo > 0 ? hi / lo : hi > 0 ? Double.MAX_VALUE : 0;
            if (spread > bestSpread) {
                best = n;
                bestRanges = r;
                bestSpread = spread;
            }
        }
        if (best == null) {
            b.append("<p>No weight parameters: the pipeline has no calibrate.</p></section>\n");
            return;
        }
        TensorQuant w = state.quant().get(best.name() + "/weight");
        QuantParams p = w.params();
        int channels = bestRanges[0].length;
        double[] gMin = new double[channels], gMax = new double[channels], scale = new double[channels];
        for (int c = 0; c < channels; c++) {
            int pc = p.perChannel() ? c : 0;
            gMin[c] = p.rangeMin(pc);
            gMax[c] = p.rangeMax(pc);
            scale[c] = p.scale(pc);
        }
        b.append("<p>Layer <b>").append(esc(best.name())).append("</b> (").append(esc(best.opType())).append(", ")
                .append(channels).append(" output channels, weights ").append(esc(describe(w)))
                .append("): the layer whose channels' value ranges differ the most");
        if (bestSpread > 0 && bestSpread < Double.MAX_VALUE) b.append(String.format(Locale.ROOT, " (%.1f×)", bestSpread));
        b.append(". Each channel's weights min..max (blue) against the range its grid covers (green), and its scale (red,"
                + " right axis).</p>\n");
        figure("per-channel", Charts.perChannel(id(), best.name() + ": weight range and scale per channel", bestRanges[0],
                bestRanges[1], gMin, gMax, scale));
        b.append("</section>\n");
    }

    private void evaluation(Map<String, Object> ev) {
        b.append("<section id=\"evaluation\"><h2>Evaluation</h2>\n");
        if (ev.isEmpty()) {
            b.append("<p>The pipeline has no evaluate.</p></section>\n");
            return;
        }
        b.append("<table class=\"kv\">\n");
        kv("samples", str(ev.get("samples")) + " (" + str(ev.get("labelled")) + " labelled)");
        if (ev.containsKey("top1_fp32")) {
            kv("top-1 FP32", fmt(100 * ((Number) ev.get("top1_fp32")).doubleValue(), "%.2f") + " %");
            kv("top-1 quantized", fmt(100 * ((Number) ev.get("top1_quantized")).doubleValue(), "%.2f") + " %");
        }
        if (ev.get("top1_agreement") instanceof Number n) kv("top-1 agreement", fmt(100 * n.doubleValue(), "%.2f") + " %");
        if (ev.get("top1") instanceof String na) kv("top-1", na);
        if (ev.containsKey("output_sqnr_db")) {
            kv("output" + (ev.get("output") instanceof String o ? " " + o : "") + " SQNR", fmt(ev.get("output_sqnr_db"), "%.2f") + " dB");
            kv("output cosine", fmt(ev.get("output_cosine"), "%.5f"));
        } else if (ev.get("output") instanceof String na) {
            kv("output", na);
        }
        if (ev.get("other_outputs") instanceof Map<?, ?> others) {
            others.forEach((k, v) -> {
                Map<String, Object> m = map(v);
                kv("output " + k + " SQNR", fmt(m.get("sqnr_db"), "%.2f") + " dB, cosine " + fmt(m.get("cosine"), "%.5f"));
            });
        }
        if (ev.get("outputs_not_compared") instanceof Map<?, ?> skipped) {
            skipped.forEach((k, v) -> kv("output " + k, "not compared: " + v));
        }
        if (ev.get("speed") instanceof Map<?, ?> sp) {
            kv("speed on this machine", "FP32 " + fmt(sp.get("fp32_ms"), "%.3f") + " ms, quantized " + fmt(sp.get("quantized_ms"), "%.3f")
                    + " ms: " + fmt(sp.get("speedup"), "%.2f") + "× (batch " + str(sp.get("batch")) + ", "
                    + str(sp.get("intra_op_threads")) + " intra-op thread(s), median of " + str(sp.get("runs")) + " runs)");
        }
        for (Object w : ev.get("warnings") instanceof List<?> l ? l : List.of()) kv("warning", str(w));
        b.append("</table></section>\n");
    }

    private void figure(String kind, String svg) {
        b.append("<figure class=\"plot\" data-plot=\"").append(kind).append("\">\n").append(svg).append("\n</figure>\n");
    }

    private String id() {
        return "plot" + (++plots);
    }

    private void kv(String k, String v) {
        b.append("<tr><th>").append(esc(k)).append("</th><td>").append(esc(v)).append("</td></tr>\n");
    }

    private static String describe(TensorQuant t) {
        QuantParams p = t.params();
        String s = (p.qmin() < 0 ? "int" : "uint") + bits(p) + (p.perChannel() ? " per-channel" : " per-tensor")
                + (p.symmetric() ? " symmetric" : " affine") + ", " + t.method();
        if (t.metric() != null && t.metricValue() != null) {
            s += " (" + t.metric() + " " + (t.metricBaseline() == null ? "" : precise(t.metricBaseline()) + " → ")
                    + precise(t.metricValue()) + ")";
        }
        return s;
    }

    private static String precise(double v) {
        return String.format(Locale.ROOT, "%.6g", v);
    }

    private static int bits(QuantParams p) {
        return 64 - Long.numberOfLeadingZeros((long) p.qmax() - p.qmin());
    }

    private static double[] distance(double[] cosines) {
        double[] d = new double[cosines.length];
        for (int i = 0; i < d.length; i++) d[i] = 1 - cosines[i];
        return d;
    }

    private static double[] values(List<String> names, Map<String, Object> perLayer, String key) {
        double[] v = new double[names.size()];
        for (int i = 0; i < v.length; i++) v[i] = number(map(perLayer.get(names.get(i))).get(key));
        return v;
    }

    private static Map<String, double[]> series(String name, List<String> names, Map<String, Object> values, String key) {
        double[] v = new double[names.size()];
        for (int i = 0; i < v.length; i++) v[i] = number(values.get(names.get(i)));
        Map<String, double[]> s = new LinkedHashMap<>();
        s.put(name, v);
        return s;
    }

    /** A number of the summary; a non-finite one is stored as its text ("NaN", "Infinity"). */
    private static double number(Object o) {
        if (o instanceof Number n) return n.doubleValue();
        if (o instanceof String s) {
            try {
                return Double.parseDouble(s);
            } catch (NumberFormatException e) {
                return Double.NaN;
            }
        }
        return Double.NaN;
    }

    private static String fmt(Object o, String format) {
        double v = number(o);
        return Double.isFinite(v) ? String.format(Locale.ROOT, format, v) : o == null ? "" : String.valueOf(o);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object o) {
        return o instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }

    private static String str(Object o) {
        return o == null ? "" : String.valueOf(o);
    }

    private static String json(Object o) {
        try {
            return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(o);
        } catch (Exception e) {
            return String.valueOf(o);
        }
    }

    static String esc(String s) {
        StringBuilder o = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> o.append("&lt;");
                case '>' -> o.append("&gt;");
                case '&' -> o.append("&amp;");
                case '"' -> o.append("&quot;");
                case '\'' -> o.append("&#39;");
                default -> o.append(c);
            }
        }
        return o.toString();
    }

    private static final String CSS = """
            body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
            h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.8em; }
            table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
            th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
            table.kv th { background: #f3f3f3; }
            tr.fp td { background: #fff3f0; }
            figure.plot { margin: 0.8em 0; }
            figure.plot svg { max-width: 100%; height: auto; border: 1px solid #eee; }
            pre { font-size: 0.8em; background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
            """;
}
