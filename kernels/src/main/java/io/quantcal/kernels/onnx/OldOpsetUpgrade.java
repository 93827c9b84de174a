package io.quantcal.kernels.onnx;

import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;

/**
 * Raises a model of opset 7, 8 or 9 to opset 10, the lowest quantcal works on (QuantizeLinear exists from 10),
 * with the rules of the ONNX version converter for the operators whose schema changed on the way:
 * <ul>
 *   <li>9: BatchNormalization drops {@code spatial} (only spatial = 1 is kept meaning); Upsample takes
 *       {@code scales} as an input instead of an attribute;</li>
 *   <li>10: Slice takes {@code starts}, {@code ends}, {@code axes} as inputs; TopK takes {@code k} as an input;
 *       Upsample is deprecated for Resize, whose opset-10 form has the same inputs and {@code mode}.</li>
 * </ul>
 * Every other operator of the default domain keeps its meaning across 7..10. A node whose old form has no
 * opset-10 equivalent (BatchNormalization with spatial = 0) is an error naming it. Below 7 the broadcasting rules
 * of the arithmetic operators changed ({@code broadcast}/{@code axis} attributes): refused with the opset named.
 */
final class OldOpsetUpgrade {

    static final long LOWEST = 7;

    private OldOpsetUpgrade() {}

    static ModelProto toTen(String source, ModelProto proto, long from) {
        if (from < LOWEST) {
            throw new ModelException(source + ": unsupported opset " + from + ": quantcal upgrades opsets " + LOWEST
                    + "..9 to 10 and reads 10.." + OnnxModel.MAX_OPSET + "; below " + LOWEST
                    + " the broadcasting attributes of Add/Mul/... changed (re-export, or run onnx.version_converter)");
        }
        GraphProto g = proto.getGraph();
        GraphEditor edit = new GraphEditor(g);
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (!Nodes.defaultDomain(n.getDomain())) continue;
            String where = source + ": " + Nodes.describe(n);
            NodeProto.Builder b = n.toBuilder();
            switch (n.getOpType()) {
                case "BatchNormalization" -> {
                    if (from < 9 && Nodes.has(n, "spatial")) {
                        if (Nodes.intAttr(n, "spatial", 1) != 1) {
                            throw new ModelException(where + " has spatial = 0, which opset 9 and later cannot express;"
                                    + " quantcal must raise opset " + from + " to 10");
                        }
                        OpsetUpgrade.removeAttribute(b, "spatial");
                    }
                    // consumed_inputs of opset < 6 cannot appear at 7+; is_test was removed at 7
                }
                case "Upsample" -> {
                    if (from < 9 && Nodes.has(n, "scales")) {
                        AttributeProto a = Nodes.attribute(n, "scales");
                        float[] scales = new float[a.getFloatsCount()];
                        for (int k = 0; k < scales.length; k++) scales[k] = a.getFloats(k);
                        String name = edit.uniqueName(n.getName() + "_scales");
                        edit.putInitializer(Graphs.floatTensor(name, scales, scales.length));
                        OpsetUpgrade.removeAttribute(b, "scales");
                        b.addInput(name);
                    }
                    b.setOpType("Resize"); // Resize-10: X, scales; mode nearest | linear, as Upsample-9
                }
                case "Slice" -> {
                    if (!Nodes.has(n, "starts") || !Nodes.has(n, "ends")) {
                        throw new ModelException(where + " has no starts/ends attributes");
                    }
                    b.addInput(OpsetUpgrade.intsToInput(edit, b, n, "starts"));
                    b.addInput(OpsetUpgrade.intsToInput(edit, b, n, "ends"));
                    if (Nodes.has(n, "axes")) b.addInput(OpsetUpgrade.intsToInput(edit, b, n, "axes"));
                }
                case "TopK" -> {
                    long k = Nodes.intAttr(n, "k", -1);
                    if (k < 0) throw new ModelException(where + " has no k attribute");
                    String kn = edit.uniqueName(n.getName() + "_k");
                    edit.putInitializer(Graphs.int64Tensor(kn, new long[] {k}, 1));
                    OpsetUpgrade.removeAttribute(b, "k");
                    b.addInput(kn);
                }
                default -> {
                    continue; // same meaning at opset 10
                }
            }
            edit.replace(i, b.build());
        }
        GraphProto gb = edit.build();
        ModelProto.Builder mb = proto.toBuilder().setGraph(gb);
        for (int i = 0; i < mb.getOpsetImportCount(); i++) {
            OperatorSetIdProto o = mb.getOpsetImport(i);
            if (Nodes.defaultDomain(o.getDomain())) mb.setOpsetImport(i, o.toBuilder().setVersion(10));
        }
        mb.addMetadataProps(onnx.Onnx.StringStringEntryProto.newBuilder().setKey(UPGRADED_KEY).setValue(String.valueOf(from)));
        return mb.build();
    }

    /** Metadata key recording the opset a model was upgraded from. */
    static final String UPGRADED_KEY = "quantcal.opset_upgraded_from";
}
