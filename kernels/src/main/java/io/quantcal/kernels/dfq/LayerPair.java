package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;

/**
 * Two consecutive Convs, Conv₁ → (activation) → Conv₂, where Conv₁'s result has no reader but Conv₂:
 * the unit that equalization and high-bias absorption rewrite (Nagel et al. 2019, §4.1, §4.2).
 *
 * @param conv1 the first layer
 * @param conv2 the second layer, reading conv1's (activation's) output as its input X
 */
record LayerPair(QuantizableNode conv1, QuantizableNode conv2) {

    /** "Relu", "Clip" or null (identity). */
    String activation() {
        return conv1.activation();
    }

    /** ReLU, or Clip(0, +∞): positively homogeneous, so scaling commutes with it. */
    boolean relu() {
        return activation() != null && conv1.clipMin() == 0 && conv1.clipMax() == Double.POSITIVE_INFINITY;
    }

    /** Clip(0, c) with finite c: ReLU6 and kin. */
    boolean boundedRelu() {
        return activation() != null && conv1.clipMin() == 0 && conv1.clipMax() < Double.POSITIVE_INFINITY;
    }

    /**
     * All pairs in graph order. Left out: Gemm/MatMul layers (a Conv output reaches a Gemm only through
     * Flatten or pooling), activations other than ReLU and Clip(0, ·), tensors read by more than one
     * node or that are graph outputs, and layers whose weight or bias another node reads too (changing a
     * shared initializer would change that node).
     */
    static List<LayerPair> find(OnnxModel m) {
        Map<String, QuantizableNode> convs = new HashMap<>();
        for (QuantizableNode q : m.quantizableNodes()) if (q.kind().dataFree()) convs.put(q.name(), q);
        List<LayerPair> pairs = new ArrayList<>();
        for (QuantizableNode q1 : m.quantizableNodes()) {
            if (!q1.kind().dataFree() || !ownsParameters(m, q1)) continue;
            if (m.isGraphOutput(q1.output()) || m.consumers(q1.output()).size() != 1) continue;
            if (q1.activation() != null && q1.clipMin() != 0) continue;
            String out = q1.finalOutput();
            if (m.isGraphOutput(out)) continue;
            List<NodeProto> readers = m.consumers(out);
            if (readers.size() != 1) continue;
            QuantizableNode q2 = convs.get(readers.get(0).getName());
            if (q2 == null || q2 == q1 || !q2.input().equals(out) || !ownsParameters(m, q2)) continue;
            if (ConvWeights.inputChannels(q2.weightShape(), q2.group()) != q1.outputChannels()) continue;
            pairs.add(new LayerPair(q1, q2));
        }
        return pairs;
    }

    private static boolean ownsParameters(OnnxModel m, QuantizableNode q) {
        if (m.consumers(q.weight()).size() != 1) return false;
        return q.bias() == null || (m.isInitializer(q.bias()) && m.consumers(q.bias()).size() == 1);
    }
}
