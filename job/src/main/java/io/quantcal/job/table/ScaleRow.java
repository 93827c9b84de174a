package io.quantcal.job.table;

import java.io.Serializable;

/** One row of the scale table, schema_version 1 (see DESIGN.md): one quantized tensor and channel. */
public record ScaleRow(
        int schemaVersion,
        String runId,
        String model,
        String modelSha256,
        String tensor,
        String node,
        String opType,
        String role,
        int axis,
        int channel,
        int bits,
        boolean signed,
        boolean symmetric,
        double scale,
        int zeroPoint,
        int qmin,
        int qmax,
        double rangeMin,
        double rangeMax,
        String method,
        String metric,
        Double metricValue,
        Double metricBaseline) implements Serializable {

    public static final int SCHEMA_VERSION = 1;

    public ScaleRow withMethod(String newMethod, double newScale, String newMetric, Double value, Double baseline) {
        return new ScaleRow(schemaVersion, runId, model, modelSha256, tensor, node, opType, role, axis, channel, bits,
                signed, symmetric, newScale, zeroPoint, qmin, qmax, (qmin - zeroPoint) * newScale,
                (qmax - zeroPoint) * newScale, newMethod, newMetric, value, baseline);
    }
}
