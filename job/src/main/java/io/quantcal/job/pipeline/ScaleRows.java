package io.quantcal.job.pipeline;

import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Flattens the state's quantization into scale-table rows, in the table's canonical order (node order;
 * activation, weight, bias; channel). Bias rows describe the int32 bias of the QDQ model: scale = input
 * scale × weight scale (per channel when the weight is), zero point 0, 32 bits — outside the 2..16 of
 * the quantizers, because that is what deployment does with biases; where such codes cannot hold the bias, the larger
 * scale the export writes it at ({@link io.quantcal.kernels.onnx.QdqExporter#biasScales}).
 */
public final class ScaleRows {

    private ScaleRows() {}

    public static List<ScaleRow> of(PipelineState st, String runId, boolean withBias) {
        List<ScaleRow> rows = new ArrayList<>();
        Map<String, TensorQuant> q = st.quant();
        java.util.Set<String> own = new java.util.HashSet<>();
        for (QuantizableNode n : st.nodes()) {
            own.add(n.name() + "/activation");
            own.add(n.name() + "/weight");
            TensorQuant a = q.get(n.name() + "/activation");
            TensorQuant w = q.get(n.name() + "/weight");
            if (a != null) add(rows, st, runId, a);
            if (w != null) add(rows, st, runId, w);
            if (withBias && a != null && w != null && n.bias() != null) {
                QuantParams pw = w.params();
                float[] bs = io.quantcal.kernels.onnx.QdqExporter.biasScales(st.model(), n, a.params(), pw);
                for (int c = 0; c < pw.channels(); c++) {
                    double s = bs[c];
                    rows.add(new ScaleRow(ScaleRow.SCHEMA_VERSION, runId, st.modelName(), st.modelSha256(), n.bias(),
                            n.name(), n.opType(), "bias", pw.perChannel() ? 0 : -1, pw.perChannel() ? c : -1, 32, true,
                            true, s, 0, Integer.MIN_VALUE, Integer.MAX_VALUE, (double) Integer.MIN_VALUE * s,
                            (double) Integer.MAX_VALUE * s, w.method(), null, null, null));
                }
            }
        }
        // the export profile's further activation rows (readers such as Add and pooling ops, quantized outputs)
        for (var e : q.entrySet()) {
            if (!own.contains(e.getKey()) && e.getValue().role().equals("activation")) add(rows, st, runId, e.getValue());
        }
        return rows;
    }

    private static void add(List<ScaleRow> rows, PipelineState st, String runId, TensorQuant t) {
        QuantParams p = t.params();
        for (int c = 0; c < p.channels(); c++) {
            rows.add(new ScaleRow(ScaleRow.SCHEMA_VERSION, runId, st.modelName(), st.modelSha256(), t.tensor(), t.node(),
                    t.opType(), t.role(), p.perChannel() ? p.axis() : -1, p.perChannel() ? c : -1, p.grid().bits(),
                    p.grid().signed(), p.symmetric(), p.scale()[c], p.zeroPoint()[c], p.qmin(), p.qmax(),
                    p.rangeMin(c), p.rangeMax(c), t.method(), t.metric(), t.metricValue(), t.metricBaseline()));
        }
    }
}
