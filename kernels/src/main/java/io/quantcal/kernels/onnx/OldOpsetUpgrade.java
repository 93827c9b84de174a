package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.TensorProto;

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
        GraphProto.Builder gb = g.toBuilder().clearNode();
        List<TensorProto> added = new ArrayList<>();
        java.util.Set<String> names = new java.util.HashSet<>();
        for (TensorProto t : g.getInitializerList()) names.add(t.getName());
        for (NodeProto n : g.getNodeList()) for (String o : n.getOutputList()) names.add(o);
        for (NodeProto n : g.getNodeList()) {
            if (!Nodes.defaultDomain(n.getDomain())) {
                gb.addNode(n);
                continue;
            }
            String where = source + ": " + Nodes.describe(n);
            NodeProto.Builder b = n.toBuilder();
            switch (n.getOpType()) {
                case "BatchNormalization" -> {
                    if (from < 9 && Nodes.has(n, "spatial")) {
                        if (Nodes.intAttr(n, "spatial", 1) != 1) {
                            throw new ModelException(where + " has spatial = 0, which opset 9 and later cannot express;"
                                    + " quantcal must raise opset " + from + " to 10");
                        }
                        removeAttr(b, "spatial");
                    }
                    // consumed_inputs of opset < 6 cannot appear at 7+; is_test was removed at 7
                }
                case "Upsample" -> {
                    if (from < 9 && Nodes.has(n, "scales")) {
                        float[] scales = floats(Nodes.attribute(n, "scales"));
                        String name = unique(names, n.getName() + "_scales");
                        added.add(Graphs.floatTensor(name, scales, scales.length));
                        removeAttr(b, "scales");
                        b.addInput(name);
                    }
                    b.setOpType("Resize"); // Resize-10: X, scales; mode nearest | linear, as Upsample-9
                }
                case "Slice" -> {
                    long[] starts = Nodes.intsAttr(n, "starts");
                    long[] ends = Nodes.intsAttr(n, "ends");
                    long[] axes = Nodes.intsAttr(n, "axes");
                    if (starts == null || ends == null) throw new ModelException(where + " has no starts/ends attributes");
                    String s = unique(names, n.getName() + "_starts");
                    String e = unique(names, n.getName() + "_ends");
                    added.add(Graphs.int64Tensor(s, starts, starts.length));
                    added.add(Graphs.int64Tensor(e, ends, ends.length));
                    removeAttr(b, "starts");
                    removeAttr(b, "ends");
                    b.addInput(s).addInput(e);
                    if (axes != null) {
                        String a = unique(names, n.getName() + "_axes");
                        added.add(Graphs.int64Tensor(a, axes, axes.length));
                        removeAttr(b, "axes");
                        b.addInput(a);
                    }
                }
                case "TopK" -> {
                    long k = Nodes.intAttr(n, "k", -1);
                    if (k < 0) throw new ModelException(where + " has no k attribute");
                    String kn = unique(names, n.getName() + "_k");
                    added.add(Graphs.int64Tensor(kn, new long[] {k}, 1));
                    removeAttr(b, "k");
                    b.addInput(kn);
                }
                default -> {
                    // same meaning at opset 10
                }
            }
            gb.addNode(b);
        }
        gb.addAllInitializer(added);
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

    private static String unique(java.util.Set<String> names, String base) {
        String n = base;
        for (int k = 1; !names.add(n); k++) n = base + "_" + k;
        return n;
    }

    private static void removeAttr(NodeProto.Builder b, String name) {
        for (int i = b.getAttributeCount() - 1; i >= 0; i--) if (b.getAttribute(i).getName().equals(name)) b.removeAttribute(i);
    }

    private static float[] floats(AttributeProto a) {
        float[] f = new float[a.getFloatsCount()];
        for (int i = 0; i < f.length; i++) f[i] = a.getFloats(i);
        return f;
    }
}
