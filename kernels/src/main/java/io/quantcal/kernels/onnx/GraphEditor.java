package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * A mutable working copy of a graph for the rewriting passes: nodes addressed by their original position
 * (removed ones become null, inserted ones hang before or after a position, so that positions stay
 * valid while editing), initializers by name, and fresh names that collide with nothing in the graph.
 */
final class GraphEditor {

    private final GraphProto original;
    private final List<NodeProto> nodes;
    private final Map<Integer, List<NodeProto>> before = new HashMap<>();
    private final Map<Integer, List<NodeProto>> after = new HashMap<>();
    private final List<NodeProto> atStart = new ArrayList<>();
    private final Map<String, Integer> positions = new HashMap<>();
    private final Map<String, TensorProto> initializers = new LinkedHashMap<>();
    private final Set<String> names = new HashSet<>();

    GraphEditor(GraphProto g) {
        this.original = g;
        this.nodes = new ArrayList<>(g.getNodeList());
        for (int i = 0; i < nodes.size(); i++) positions.put(nodes.get(i).getName(), i);
        for (TensorProto t : g.getInitializerList()) initializers.put(t.getName(), t);
        Subgraphs.graphNames(g, names);
    }

    /** {@code base} if no tensor or node is called that yet, else {@code base_1}, {@code base_2}, ...; reserved. */
    String uniqueName(String base) {
        String name = base;
        for (int k = 1; !names.add(name); k++) name = base + "_" + k;
        return name;
    }

    int position(String nodeName) {
        Integer p = positions.get(nodeName);
        if (p == null) throw new IllegalArgumentException("no node " + nodeName);
        return p;
    }

    NodeProto node(int position) {
        return nodes.get(position);
    }

    void replace(int position, NodeProto n) {
        nodes.set(position, n);
    }

    /** The node at {@code position} reading {@code to} wherever it read {@code from}. */
    void rewireAll(int position, String from, String to) {
        NodeProto.Builder n = nodes.get(position).toBuilder();
        for (int i = 0; i < n.getInputCount(); i++) if (n.getInput(i).equals(from)) n.setInput(i, to);
        nodes.set(position, n.build());
    }

    void remove(int position) {
        nodes.set(position, null);
    }

    void insertBefore(int position, NodeProto n) {
        before.computeIfAbsent(position, k -> new ArrayList<>()).add(n);
    }

    void insertAfter(int position, NodeProto n) {
        after.computeIfAbsent(position, k -> new ArrayList<>()).add(n);
    }

    void insertAtStart(NodeProto n) {
        atStart.add(n);
    }

    boolean isInitializer(String name) {
        return initializers.containsKey(name);
    }

    /** Adds or replaces an initializer (replacing keeps its place in the list). */
    void putInitializer(TensorProto t) {
        names.add(t.getName());
        initializers.put(t.getName(), t);
    }

    /** Removes the initializers among {@code candidates} that no node and no graph output reads any more. */
    void dropUnused(Collection<String> candidates) {
        Set<String> read = new HashSet<>();
        for (NodeProto n : allNodes()) read.addAll(Subgraphs.reads(n));
        for (ValueInfoProto v : original.getOutputList()) read.add(v.getName());
        for (String c : candidates) {
            if (!read.contains(c)) initializers.remove(c);
        }
    }

    /**
     * Removes, from the producers of {@code tensors} back, every node whose outputs nothing reads any more (no node,
     * no graph output), and the initializers among those tensors and the removed nodes' inputs that nothing reads.
     */
    void dropDeadNodes(Collection<String> tensors) {
        // how many times each tensor is read (by a node or as a graph output), counted once and kept as nodes go
        Map<String, Integer> reads = new HashMap<>();
        for (ValueInfoProto v : original.getOutputList()) reads.merge(v.getName(), 1, Integer::sum);
        for (NodeProto n : allNodes()) for (String in : Subgraphs.reads(n)) reads.merge(in, 1, Integer::sum);
        java.util.ArrayDeque<String> todo = new java.util.ArrayDeque<>(tensors);
        Set<String> candidates = new HashSet<>(tensors);
        while (!todo.isEmpty()) {
            String t = todo.pop();
            if (reads.getOrDefault(t, 0) > 0) continue;
            for (int i = 0; i < nodes.size(); i++) {
                NodeProto n = nodes.get(i);
                if (n == null || !n.getOutputList().contains(t)) continue;
                boolean unread = true;
                for (String o : n.getOutputList()) unread &= reads.getOrDefault(o, 0) == 0;
                if (!unread) continue;
                nodes.set(i, null);
                for (String in : Subgraphs.reads(n)) {
                    reads.merge(in, -1, Integer::sum);
                    candidates.add(in);
                    todo.push(in);
                }
            }
        }
        dropUnused(candidates);
    }

    private List<NodeProto> allNodes() {
        List<NodeProto> all = new ArrayList<>(atStart);
        for (int i = 0; i < nodes.size(); i++) {
            all.addAll(before.getOrDefault(i, List.of()));
            if (nodes.get(i) != null) all.add(nodes.get(i));
            all.addAll(after.getOrDefault(i, List.of()));
        }
        return all;
    }

    /**
     * The edited graph. Graph inputs that named a removed initializer (IR &lt; 4 models list initializers
     * as inputs) go with it; value_info of tensors that no longer exist is dropped.
     */
    GraphProto build() {
        List<NodeProto> all = allNodes();
        Set<String> exists = new HashSet<>(initializers.keySet());
        for (NodeProto n : all) exists.addAll(n.getOutputList());
        Set<String> originalInits = new HashSet<>();
        for (TensorProto t : original.getInitializerList()) originalInits.add(t.getName());
        GraphProto.Builder g = original.toBuilder().clearNode().addAllNode(all)
                .clearInitializer().addAllInitializer(initializers.values()).clearInput().clearValueInfo();
        for (ValueInfoProto v : original.getInputList()) {
            if (!originalInits.contains(v.getName()) || initializers.containsKey(v.getName())) g.addInput(v);
        }
        for (ValueInfoProto v : original.getValueInfoList()) {
            if (exists.contains(v.getName())) g.addValueInfo(v);
        }
        return g.build();
    }
}
