package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * An If whose condition the graph computes from constants alone runs one branch whatever the input: that branch is
 * put in the If's place in the main graph, where quantcal quantizes it (a Conv inside a subgraph stays FP32). Silero
 * VAD's convolutions sit in an If on its sample-rate input; with the input fixed to one value
 * ({@link InputValues}, {@code quantcal.input-values}), the condition is a constant. ONNX Runtime computes the
 * condition (the cone of nodes behind it, once on the driver, as {@link ConstantCones} does for weights); the branch's
 * nodes and initializers move up, names it defines that the main graph already uses are renamed (in nested subgraphs
 * too), each If output becomes the branch output's tensor (its producer renamed, or an Identity when the branch
 * returns a tensor it did not compute), and the condition's nodes go when nothing else reads them. Inlined branches
 * are looked at again: a nested If with a constant condition goes the same way; one whose condition is computed at run
 * time (Silero's ones on the state's shape) stays, and its quantizable nodes stay FP32 with that reason.
 */
public final class IfInlining {

    private IfInlining() {}

    /** The rewritten model and each inlined If with the branch taken ("If_0: then_branch"), in order. */
    public record Result(OnnxModel model, List<String> inlined) {}

    /** Bounds the rounds (each inlines one If); real models hold a few. */
    private static final int MAX_ROUNDS = 10_000;

    public static Result inline(OnnxModel m) {
        List<String> inlined = new ArrayList<>();
        for (int round = 0; round < MAX_ROUNDS; round++) {
            OnnxModel next = inlineOne(m, inlined);
            if (next == null) break;
            m = next;
        }
        return new Result(m, List.copyOf(inlined));
    }

    /** The model with its first If of constant condition inlined, or null when it has none. */
    private static OnnxModel inlineOne(OnnxModel m, List<String> inlined) {
        if (m.nodes().stream().noneMatch(n -> n.getOpType().equals("If"))) return null;
        GraphProto g = m.graph();
        GraphEditor edit = new GraphEditor(g);
        Map<String, TensorProto> consts = new LinkedHashMap<>();
        for (TensorProto t : g.getInitializerList()) consts.put(t.getName(), t);
        Map<String, Integer> producer = ConstantCones.producers(edit, g.getNodeCount());
        Map<String, Boolean> memo = new HashMap<>();
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (!n.getOpType().equals("If") || !Nodes.defaultDomain(n.getDomain())) continue;
            String cond = n.getInput(0);
            if (!ConstantCones.constant(cond, edit, producer, consts, memo, 0)) continue;
            Boolean value = conditionValue(m, cond, edit, producer, consts);
            if (value == null) continue;
            String branchName = value ? "then_branch" : "else_branch";
            GraphProto branch = null;
            for (AttributeProto a : n.getAttributeList()) if (a.getName().equals(branchName)) branch = a.getG();
            if (branch == null) throw new ModelException(m.source() + ": " + Nodes.describe(n) + " has no " + branchName);
            if (branch.getSparseInitializerCount() > 0 || branch.getOutputCount() != n.getOutputCount()) {
                throw new ModelException(m.source() + ": " + Nodes.describe(n) + ": its " + branchName + " has "
                        + branch.getOutputCount() + " outputs for the If's " + n.getOutputCount()
                        + (branch.getSparseInitializerCount() > 0 ? " and sparse initializers" : "")
                        + ", expected one output per If output and dense initializers");
            }
            place(g, edit, i, n, branch);
            inlined.add(n.getName() + ": " + branchName);
            edit.dropDeadNodes(List.of(cond));
            return m.withGraph(edit.build());
        }
        return null;
    }

    /** The condition's one boolean, computed by ONNX Runtime; null when it is not one value. */
    private static Boolean conditionValue(OnnxModel m, String cond, GraphEditor edit,
            Map<String, Integer> producer, Map<String, TensorProto> consts) {
        TensorProto t = consts.get(cond);
        if (t == null) {
            Integer p = producer.get(cond);
            if (p == null) return null;
            List<String> outputs = new ArrayList<>();
            try {
                t = ConstantCones.compute(m, edit, producer, consts, new java.util.TreeSet<>(Set.of(p)), outputs,
                        new LinkedHashMap<>()).get(cond);
            } catch (ModelException e) {
                return null; // ONNX Runtime cannot compute it alone: the If stays, as it was
            }
        }
        if (Tensors.count(Tensors.dims(t)) != 1 || t.getDataType() != TensorProto.DataType.BOOL_VALUE) return null;
        if (!t.getRawData().isEmpty()) return t.getRawData().byteAt(0) != 0;
        return t.getInt32DataCount() > 0 && t.getInt32Data(0) != 0;
    }

    /** Replaces the If at {@code at} by the branch's nodes and initializers. */
    private static void place(GraphProto g, GraphEditor edit, int at, NodeProto ifNode, GraphProto branch) {
        // names the main graph uses outside this If: a name the branch defines among them is renamed
        Set<String> outside = new HashSet<>();
        for (ValueInfoProto v : g.getInputList()) outside.add(v.getName());
        for (ValueInfoProto v : g.getOutputList()) outside.add(v.getName());
        for (TensorProto t : g.getInitializerList()) outside.add(t.getName());
        Set<String> nodeNames = new HashSet<>();
        for (NodeProto o : g.getNodeList()) {
            if (o == ifNode) continue;
            nodeNames.add(o.getName());
            outside.addAll(o.getInputList());
            outside.addAll(o.getOutputList());
            Subgraphs.names(o, outside);
        }
        outside.addAll(ifNode.getOutputList());
        Map<String, String> rename = new HashMap<>();
        Set<String> produced = new HashSet<>();
        for (NodeProto b : branch.getNodeList()) for (String o : b.getOutputList()) if (!o.isEmpty()) produced.add(o);
        Set<String> definedHere = new HashSet<>(produced);
        for (TensorProto t : branch.getInitializerList()) definedHere.add(t.getName());
        for (String d : definedHere) if (outside.contains(d)) rename.put(d, edit.uniqueName(d + "_inlined"));
        // each If output: the branch output's producer writes it directly when the branch computed it (the first
        // output it is; a repeat, or a name from outside the branch, through an Identity)
        Map<Integer, String> viaIdentity = new LinkedHashMap<>();
        Set<String> taken = new HashSet<>();
        for (int k = 0; k < branch.getOutputCount(); k++) {
            String bo = branch.getOutput(k).getName(), io = ifNode.getOutput(k);
            if (io.isEmpty()) continue;
            if (produced.contains(bo) && taken.add(bo)) {
                rename.put(bo, io); // (also when the name clashed: the If's output name is the main graph's own)
            } else {
                viaIdentity.put(k, bo);
            }
        }
        for (TensorProto t : branch.getInitializerList()) {
            edit.putInitializer(t.toBuilder().setName(rename.getOrDefault(t.getName(), t.getName())).build());
        }
        for (NodeProto b : branch.getNodeList()) {
            NodeProto r = renamed(b, rename);
            if (!r.getName().isEmpty() && !nodeNames.add(r.getName())) {
                r = r.toBuilder().setName(edit.uniqueName(r.getName() + "_inlined")).build();
                nodeNames.add(r.getName());
            }
            edit.insertBefore(at, r);
        }
        for (Map.Entry<Integer, String> e : viaIdentity.entrySet()) {
            String from = rename.getOrDefault(e.getValue(), e.getValue());
            edit.insertBefore(at, Graphs.node("Identity", edit.uniqueName(ifNode.getName() + "_output_" + e.getKey()),
                    List.of(from), List.of(ifNode.getOutput(e.getKey()))));
        }
        edit.remove(at);
    }

    /** {@code n} with every name in {@code rename} replaced, in its inputs, outputs and subgraphs (SSA: no shadowing). */
    static NodeProto renamed(NodeProto n, Map<String, String> rename) {
        if (rename.isEmpty()) return n;
        NodeProto.Builder b = Subgraphs.mapGraphs(n, g -> renamed(g, rename)).toBuilder();
        for (int i = 0; i < b.getInputCount(); i++) b.setInput(i, rename.getOrDefault(b.getInput(i), b.getInput(i)));
        for (int i = 0; i < b.getOutputCount(); i++) b.setOutput(i, rename.getOrDefault(b.getOutput(i), b.getOutput(i)));
        return b.build();
    }

    private static GraphProto renamed(GraphProto g, Map<String, String> rename) {
        GraphProto.Builder b = g.toBuilder().clearNode();
        for (NodeProto n : g.getNodeList()) b.addNode(renamed(n, rename));
        for (int i = 0; i < b.getOutputCount(); i++) {
            String o = b.getOutput(i).getName();
            if (rename.containsKey(o)) b.setOutput(i, b.getOutput(i).toBuilder().setName(rename.get(o)));
        }
        return b.build();
    }
}
