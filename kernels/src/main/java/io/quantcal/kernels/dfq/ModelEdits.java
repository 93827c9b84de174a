package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * New values for initializers (same shape) and new biases for Convs, applied in one graph rewrite. A
 * Conv without a bias, or whose bias another node reads too, gets a fresh bias initializer.
 */
final class ModelEdits {

    private final OnnxModel model;
    private final Map<String, float[]> values = new LinkedHashMap<>();
    private final Map<String, float[]> biases = new LinkedHashMap<>();

    ModelEdits(OnnxModel model) {
        this.model = model;
    }

    /** Replaces the values of initializer {@code name}, keeping its dims. */
    ModelEdits initializer(String name, float[] data) {
        int n = model.initializerFloats(name).length;
        if (n != data.length) {
            throw new IllegalArgumentException(model.source() + ": initializer " + name + " has " + n
                    + " values, replacement has " + data.length);
        }
        values.put(name, data.clone());
        return this;
    }

    /** Sets the bias of Conv node {@code conv} (one value per output channel). */
    ModelEdits bias(String conv, float[] bias) {
        biases.put(conv, bias.clone());
        return this;
    }

    OnnxModel build() {
        if (values.isEmpty() && biases.isEmpty()) return model;
        GraphProto.Builder g = model.graph().toBuilder();
        Set<String> taken = new HashSet<>();
        for (TensorProto t : g.getInitializerList()) taken.add(t.getName());
        for (NodeProto n : g.getNodeList()) {
            taken.add(n.getName());
            taken.addAll(n.getInputList());
            taken.addAll(n.getOutputList());
            io.quantcal.kernels.onnx.Subgraphs.names(n, taken);
        }
        Map<String, float[]> all = new LinkedHashMap<>(values);
        for (int k = 0; k < g.getNodeCount(); k++) {
            NodeProto n = g.getNode(k);
            float[] b = biases.get(n.getName());
            if (b == null) continue;
            long cout = model.shape(n.getInput(1))[0];
            if (b.length != cout) {
                throw new IllegalArgumentException(model.source() + ": bias for node " + n.getName() + " has "
                        + b.length + " values, expected " + cout + " (its output channels)");
            }
            String old = n.getInputCount() > 2 && !n.getInput(2).isEmpty() ? n.getInput(2) : null;
            if (old != null && model.isInitializer(old) && model.consumers(old).size() == 1) {
                all.put(old, b);
                continue;
            }
            String name = n.getInput(1) + "_bias";
            for (int i = 1; !taken.add(name); i++) name = n.getInput(1) + "_bias_" + i;
            g.addInitializer(Graphs.floatTensor(name, b, cout));
            NodeProto.Builder nb = n.toBuilder().clearInput().addInput(n.getInput(0)).addInput(n.getInput(1)).addInput(name);
            g.setNode(k, nb.build());
        }
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            float[] v = all.get(t.getName());
            if (v != null) g.setInitializer(i, Graphs.floatTensor(t.getName(), v, dims(t)));
        }
        return model.withGraph(g.build());
    }

    private static long[] dims(TensorProto t) {
        List<Long> d = t.getDimsList();
        long[] a = new long[d.size()];
        for (int i = 0; i < a.length; i++) a[i] = d.get(i);
        return a;
    }
}
