package io.quantcal.kernels.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Weights and biases that the graph computes from constants alone, with arithmetic that {@link ConstantFolder} does
 * not move by hand: torch's weight normalization exported without constant folding (w = g · v / ‖v‖: ReduceL2, Div,
 * Mul), a scale multiplied into a weight, a kernel sliced or concatenated from parameters. The cone of nodes that
 * computes such a tensor reads no graph input, so ONNX Runtime computes it once when it loads the model (its constant
 * folding, node by node with its CPU kernels). quantcal does the same on the driver: the cone runs in ONNX Runtime,
 * node by node with no graph optimization, and its result becomes an initializer of the tensor's name. The folded model
 * therefore computes what ONNX Runtime computes for the original.
 *
 * <p>Only the weight and bias inputs of Conv, ConvTranspose, Gemm and MatMul are evaluated (the rest of the graph stays
 * as it was written), and only cones of deterministic default-domain ops without subgraphs: a random generator, an
 * If/Loop/Scan or a custom-domain op keeps its tensor computed at run time, and the coverage says so.
 */
final class ConstantCones {

    private ConstantCones() {}

    /** Ops whose value is not a function of their inputs, or that carry subgraphs. */
    private static final Set<String> NOT_FOLDED = Set.of("RandomNormal", "RandomUniform", "RandomNormalLike",
            "RandomUniformLike", "Multinomial", "Bernoulli", "If", "Loop", "Scan");

    /** What was evaluated: the tensors made initializers, and how many nodes of each op the cones held. */
    record Result(List<String> tensors, Map<String, Integer> byOp) {}

    /**
     * Evaluates, in {@code edit}, the cones of the weight and bias inputs of the quantizable nodes that are computed from
     * constants ({@code consts}: initializers and folded values, updated here), then drops the nodes no longer read.
     */
    static Result evaluate(OnnxModel m, GraphProto g, GraphEditor edit, Map<String, TensorProto> consts) {
        Map<String, Integer> producer = producers(edit, g.getNodeCount());
        Map<String, Boolean> memo = new HashMap<>();
        Set<String> targets = new LinkedHashSet<>();
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = edit.node(i);
            if (n == null || !Nodes.defaultDomain(n.getDomain()) || !QuantizableNode.OP_TYPES.contains(n.getOpType())) {
                continue;
            }
            for (int k = 0; k < n.getInputCount(); k++) {
                String in = n.getInput(k);
                // MatMul: either operand may be the constant one (ConstantFirstMatMul takes W · x)
                boolean weightSlot = k >= 1 || n.getOpType().equals("MatMul");
                if (weightSlot && !in.isEmpty() && !consts.containsKey(in) && producer.containsKey(in)
                        && constant(in, edit, producer, consts, memo, 0)) {
                    targets.add(in);
                }
            }
        }
        if (targets.isEmpty()) return new Result(List.of(), Map.of());

        // the producers of the targets, with every output they have (a Split of a parameter gives several weights)
        Set<Integer> roots = new java.util.TreeSet<>();
        for (String t : targets) roots.add(producer.get(t));
        Map<String, Integer> byOp = new LinkedHashMap<>();
        List<String> outputs = new ArrayList<>();
        Map<String, TensorProto> values = compute(m, edit, producer, consts, roots, outputs, byOp);

        for (int i : roots) edit.remove(i);
        for (String o : outputs) {
            TensorProto t = values.get(o);
            consts.put(o, t);
            edit.putInitializer(t);
        }
        // the cone's nodes that nothing reads any more go, with the parameters only they read
        Set<String> inputs = new LinkedHashSet<>();
        for (int i : roots) inputs.addAll(g.getNode(i).getInputList());
        edit.dropDeadNodes(inputs);
        return new Result(List.copyOf(targets), byOp);
    }

    /** Each tensor's producing node position in {@code edit} (its first {@code count} nodes). */
    static Map<String, Integer> producers(GraphEditor edit, int count) {
        Map<String, Integer> producer = new HashMap<>();
        for (int i = 0; i < count; i++) {
            NodeProto n = edit.node(i);
            if (n == null) continue;
            for (String o : n.getOutputList()) if (!o.isEmpty()) producer.put(o, i);
        }
        return producer;
    }

    /**
     * Runs the nodes at {@code roots} and everything they need back to {@code consts} once in ONNX Runtime: the values
     * of the roots' outputs (listed into {@code outputs}), counting the cone's nodes per op into {@code byOp}.
     */
    static Map<String, TensorProto> compute(OnnxModel m, GraphEditor edit, Map<String, Integer> producer,
            Map<String, TensorProto> consts, Set<Integer> roots, List<String> outputs, Map<String, Integer> byOp) {
        Set<Integer> cone = new java.util.TreeSet<>();
        java.util.ArrayDeque<Integer> todo = new java.util.ArrayDeque<>(roots);
        while (!todo.isEmpty()) {
            int i = todo.pop();
            if (!cone.add(i)) continue;
            for (String in : edit.node(i).getInputList()) {
                Integer p = producer.get(in);
                if (!in.isEmpty() && !consts.containsKey(in) && p != null) todo.push(p);
            }
        }
        for (int i : roots) for (String o : edit.node(i).getOutputList()) if (!o.isEmpty()) outputs.add(o);

        GraphProto.Builder sub = GraphProto.newBuilder().setName("quantcal_constant_cones");
        Set<String> leaves = new LinkedHashSet<>();
        for (int i : cone) {
            NodeProto n = edit.node(i);
            sub.addNode(n);
            byOp.merge(n.getOpType(), 1, Integer::sum);
            for (String in : n.getInputList()) if (consts.containsKey(in)) leaves.add(in);
        }
        for (String l : leaves) sub.addInitializer(consts.get(l));
        for (String o : outputs) sub.addOutput(ValueInfoProto.newBuilder().setName(o));
        ModelProto.Builder mp = ModelProto.newBuilder().setIrVersion(m.proto().getIrVersion())
                .addAllOpsetImport(m.proto().getOpsetImportList()).setGraph(sub);
        return run(m, mp.build(), outputs);
    }

    /** Whether {@code tensor} is a function of constants alone, through ops folded here. */
    static boolean constant(String tensor, GraphEditor edit, Map<String, Integer> producer,
            Map<String, TensorProto> consts, Map<String, Boolean> memo, int depth) {
        if (tensor.isEmpty() || consts.containsKey(tensor)) return true;
        Boolean known = memo.get(tensor);
        if (known != null) return known;
        Integer p = producer.get(tensor);
        boolean c = false;
        if (p != null && depth < 10_000) {
            NodeProto n = edit.node(p);
            c = Nodes.defaultDomain(n.getDomain()) && !NOT_FOLDED.contains(n.getOpType()) && !Subgraphs.has(n)
                    && (n.getInputCount() > 0 || n.getOpType().equals("Constant"));
            for (int k = 0; c && k < n.getInputCount(); k++) {
                c = constant(n.getInput(k), edit, producer, consts, memo, depth + 1);
            }
        }
        memo.put(tensor, c);
        return c;
    }

    /** ONNX Runtime's Java element type as the ONNX data type (its enum numbers them in another order). */
    private static int onnxType(OnnxModel m, String name, OnnxTensor t) {
        String type = t.getInfo().onnxType.name().replace("ONNX_TENSOR_ELEMENT_DATA_TYPE_", "");
        try {
            return TensorProto.DataType.valueOf(type).getNumber();
        } catch (IllegalArgumentException e) {
            throw new ModelException(m.source() + ": constant " + name + " is " + type + ", which quantcal does not fold");
        }
    }

    /** The outputs of the cone model, run once in ONNX Runtime on the driver with no graph optimization. */
    private static Map<String, TensorProto> run(OnnxModel m, ModelProto cones, List<String> outputs) {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            o.setIntraOpNumThreads(1);
            try (OrtSession s = env.createSession(cones.toByteArray(), o); OrtSession.Result r = s.run(Map.of())) {
                Map<String, TensorProto> out = new LinkedHashMap<>();
                for (String name : outputs) {
                    OnnxValue v = r.get(name).orElseThrow();
                    if (!(v instanceof OnnxTensor t) || t.getInfo().type == ai.onnxruntime.OnnxJavaType.STRING) {
                        throw new ModelException(m.source() + ": constant " + name + " is not a numeric tensor");
                    }
                    java.nio.ByteBuffer b = t.getByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                    TensorProto.Builder tp = TensorProto.newBuilder().setName(name)
                            .setDataType(onnxType(m, name, t)).setRawData(ByteString.copyFrom(b));
                    for (long d : t.getInfo().getShape()) tp.addDims(d);
                    out.put(name, tp.build());
                }
                return out;
            }
        } catch (OrtException e) {
            throw new ModelException(m.source() + ": ONNX Runtime could not evaluate the constant weights "
                    + outputs + " (" + e.getMessage() + ")");
        }
    }
}
