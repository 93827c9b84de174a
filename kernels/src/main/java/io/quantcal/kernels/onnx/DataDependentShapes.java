package io.quantcal.kernels.onnx;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.NodeProto;

/**
 * Which tensors have a shape that depends on the values of the data, not only on the input shapes: the outputs of
 * NonZero, NonMaxSuppression, Compress and Unique, of a TopK whose k is not a constant or a function of the input
 * shapes, and everything computed from them. (An If, Loop or Scan may return shapes its data decide too, but mostly does not: Silero VAD's If on the sample
 * rate returns the same shape either way; a comparison finding sizes that differ stops with that message instead.) A detection model's boxes after NonMaxSuppression are one: the
 * FP32 and the quantized model keep different boxes for the same image, so the two outputs cannot be compared element
 * by element, nor laid out per sample.
 */
public final class DataDependentShapes {

    private DataDependentShapes() {}

    /** Ops whose output shape follows from their input values. */
    private static final Set<String> SOURCES = Set.of("NonZero", "NonMaxSuppression", "Compress", "Unique");

    /**
     * For each tensor whose shape depends on the data: the first op on its way that makes it so ("NonMaxSuppression
     * node 'nms'"). Tensors not in the map have shapes that follow from the input shapes.
     */
    public static Map<String, String> of(OnnxModel m) {
        Map<String, String> why = new HashMap<>();
        // values that follow from the input shapes alone (constants, Shape/Size, arithmetic on them): a TopK whose k,
        // or a NonZero whose input, is one of them (torchvision's k = min(1000, anchors)) has a shape the data do not decide
        java.util.Set<String> shapeValues = new java.util.HashSet<>();
        for (NodeProto n : m.nodes()) { // topological order
            // (the shape of a tensor whose shape the data decide is data, not a function of the input shapes)
            boolean fromShapes = Nodes.defaultDomain(n.getDomain()) && ((n.getOpType().equals("Shape")
                    || n.getOpType().equals("Size")) && n.getInputCount() > 0 && !why.containsKey(n.getInput(0))
                    || n.getOpType().equals("Constant")
                    || n.getInputCount() > 0 && n.getInputList().stream().allMatch(t -> t.isEmpty() || m.isInitializer(t)
                            || shapeValues.contains(t)));
            if (fromShapes) for (String out : n.getOutputList()) if (!out.isEmpty()) shapeValues.add(out);
            String cause = null;
            boolean source = SOURCES.contains(n.getOpType()) && !(n.getInputCount() > 0 && fromShapes(m, shapeValues, n.getInput(0)))
                    || n.getOpType().equals("TopK") && n.getInputCount() > 1 && !fromShapes(m, shapeValues, n.getInput(1));
            if (Nodes.defaultDomain(n.getDomain()) && source) {
                cause = n.getOpType() + " node '" + (n.getName().isEmpty() ? n.getOutput(0) : n.getName()) + "'";
            } else {
                for (String in : n.getInputList()) {
                    if (why.containsKey(in)) {
                        cause = why.get(in);
                        break;
                    }
                }
            }
            if (cause != null) for (String out : n.getOutputList()) if (!out.isEmpty()) why.put(out, cause);
        }
        return why;
    }

    private static boolean fromShapes(OnnxModel m, java.util.Set<String> shapeValues, String tensor) {
        return m.isInitializer(tensor) || shapeValues.contains(tensor);
    }

    /** The graph outputs of {@code m} in {@code outputs} order whose shape depends on the data, each with its cause. */
    public static Map<String, String> outputs(OnnxModel m, List<String> outputs) {
        Map<String, String> all = of(m), out = new java.util.LinkedHashMap<>();
        for (String o : outputs) if (all.containsKey(o)) out.put(o, all.get(o));
        return out;
    }
}
