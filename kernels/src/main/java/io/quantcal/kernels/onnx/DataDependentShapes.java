package io.quantcal.kernels.onnx;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.NodeProto;

/**
 * Which tensors have a shape that depends on the values of the data, not only on the input shapes: the outputs of
 * NonZero, NonMaxSuppression, Compress and Unique whose input is not a function of the input shapes, of a TopK whose
 * k is not, and everything computed from them. A detection model's boxes after NonMaxSuppression are one: the FP32
 * and the quantized model keep different boxes for the same image, so the two outputs cannot be compared element by
 * element, nor laid out per sample. (An If, Loop or Scan may return shapes its data decide too, but mostly does not:
 * Silero VAD's If on the sample rate returns the same shape either way; ModelRunner finds such a tensor at run time.)
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
        for (var t : m.graph().getInitializerList()) shapeValues.add(t.getName());
        for (NodeProto n : m.nodes()) { // topological order
            // (the shape of a tensor whose shape the data decide is data, not a function of the input shapes)
            boolean shaped = Nodes.defaultDomain(n.getDomain()) && ((n.getOpType().equals("Shape")
                    || n.getOpType().equals("Size")) && n.getInputCount() > 0 && !why.containsKey(n.getInput(0))
                    || n.getOpType().equals("Constant")
                    || n.getInputCount() > 0 && n.getInputList().stream().allMatch(t -> t.isEmpty() || m.isInitializer(t)
                            || shapeValues.contains(t)));
            if (shaped) for (String out : n.getOutputList()) if (!out.isEmpty()) shapeValues.add(out);
            String cause = null;
            boolean source = SOURCES.contains(n.getOpType()) && !(n.getInputCount() > 0 && shapeValues.contains(n.getInput(0)))
                    || n.getOpType().equals("TopK") && n.getInputCount() > 1 && !shapeValues.contains(n.getInput(1));
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

}
