package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.NodeProto;

/**
 * Which quantizable layers feed which: the order in which layer-by-layer methods (sequential EasyQuant,
 * AdaRound's asymmetric reconstruction) can treat them.
 *
 * <p>A layer's input depends only on the layers upstream of it. So instead of strictly one layer after the
 * other in node order, the layers fall into <em>waves</em>: wave k holds the layers whose quantizable
 * ancestors all lie in waves &lt; k (longest-path layering). Quantizing every layer of waves &lt; k gives a
 * layer of wave k exactly the input it would get with every node-order-earlier layer quantized (the earlier
 * layers that are not its ancestors cannot change its input), and the layers of one wave can be treated in
 * parallel.
 */
public final class LayerOrder {

    private LayerOrder() {}

    /**
     * The quantizable ancestors of each of {@code nodes} (names, among {@code nodes} only), in node order.
     *
     * @throws ModelException when the graph's nodes are not in topological order (a node reads a tensor that
     *     a later node produces), as ONNX requires
     */
    public static Map<String, Set<String>> ancestors(OnnxModel model, List<QuantizableNode> nodes) {
        Set<String> selected = new LinkedHashSet<>();
        for (QuantizableNode n : nodes) selected.add(n.name());
        Map<String, Set<String>> producedBy = new HashMap<>();
        Set<String> laterOutputs = new LinkedHashSet<>();
        for (NodeProto p : model.nodes()) laterOutputs.addAll(p.getOutputList());
        Map<String, Set<String>> result = new HashMap<>();
        for (NodeProto p : model.nodes()) {
            for (String o : p.getOutputList()) laterOutputs.remove(o);
            Set<String> up = new LinkedHashSet<>();
            for (String in : Subgraphs.reads(p)) {
                if (laterOutputs.contains(in)) {
                    throw new ModelException(model.source() + ": node " + p.getName() + " reads " + in
                            + " before the node that produces it; ONNX needs nodes in topological order");
                }
                Set<String> a = producedBy.get(in);
                if (a != null) up.addAll(a);
            }
            if (selected.contains(p.getName())) result.put(p.getName(), Set.copyOf(up));
            Set<String> out = new LinkedHashSet<>(up);
            if (selected.contains(p.getName())) out.add(p.getName());
            for (String o : p.getOutputList()) producedBy.put(o, out);
        }
        Map<String, Set<String>> ordered = new java.util.LinkedHashMap<>();
        for (QuantizableNode n : nodes) {
            Set<String> a = result.get(n.name());
            if (a == null) {
                throw new ModelException(model.source() + ": quantizable node " + n.name() + " is not in the graph");
            }
            Set<String> sorted = new LinkedHashSet<>();
            for (QuantizableNode m : nodes) if (a.contains(m.name())) sorted.add(m.name());
            ordered.put(n.name(), sorted);
        }
        return ordered;
    }

    /** {@code nodes} in waves (see the class comment); node order within a wave. */
    public static List<List<QuantizableNode>> waves(OnnxModel model, List<QuantizableNode> nodes) {
        Map<String, Set<String>> anc = ancestors(model, nodes);
        Map<String, Integer> wave = new HashMap<>();
        List<List<QuantizableNode>> waves = new ArrayList<>();
        // ancestors come before their descendants in node order, so one pass suffices
        List<QuantizableNode> inGraphOrder = new ArrayList<>(nodes);
        Map<String, Integer> position = new HashMap<>();
        List<NodeProto> all = model.nodes();
        for (int i = 0; i < all.size(); i++) position.put(all.get(i).getName(), i);
        inGraphOrder.sort(java.util.Comparator.comparing(n -> position.get(n.name())));
        for (QuantizableNode n : inGraphOrder) {
            int w = 0;
            for (String a : anc.get(n.name())) w = Math.max(w, wave.get(a) + 1);
            wave.put(n.name(), w);
        }
        for (QuantizableNode n : nodes) {
            int w = wave.get(n.name());
            while (waves.size() <= w) waves.add(new ArrayList<>());
            waves.get(w).add(n);
        }
        List<List<QuantizableNode>> out = new ArrayList<>();
        for (List<QuantizableNode> w : waves) out.add(List.copyOf(w));
        return List.copyOf(out);
    }
}
