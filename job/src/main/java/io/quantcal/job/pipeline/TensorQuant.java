package io.quantcal.job.pipeline;

import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;

/**
 * The quantization of one tensor as consumed by one quantizable node: what the scale table holds, before it
 * is flattened into rows (one per channel).
 */
public record TensorQuant(String tensor, String node, String opType, String role, QuantParams params, String method,
                          String metric, Double metricValue, Double metricBaseline) implements Serializable {

    public String key() {
        return node + "/" + role;
    }

    /**
     * The key of an activation row that is not a quantizable node's own input (an Add's operand, a quantized
     * output, ...): a node may read several such tensors, so the tensor is part of the key.
     */
    public static String extraKey(String node, String tensor) {
        return node + "/activation:" + tensor;
    }
}
