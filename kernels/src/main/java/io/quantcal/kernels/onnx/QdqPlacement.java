package io.quantcal.kernels.onnx;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * Which activation tensors of a model a deployment profile quantizes, which of them share parameters, and
 * which Relu/Clip nodes the output quantization may replace. One plan serves calibration (the tensors to
 * gather statistics of), the scale table (one row per tensor and reader) and the QDQ export.
 *
 * <p><b>{@link QdqProfile#ORT}</b>, the placement ONNX Runtime's CPU provider fuses into integer kernels
 * (as its own quantizer writes it, QDQ format):
 * <ul>
 *   <li>the input and the output of every quantized Conv/Gemm/MatMul;</li>
 *   <li>the float inputs and the output of Add, Mul, Concat, AveragePool and GlobalAveragePool when every
 *       data input is an activation, and of an Add or Mul of a quantized activation and a one-value constant
 *       (the export writes the constant as one exact code, {@link ConstantOperands}); an op with any other constant
 *       input stays in float;</li>
 *   <li>a compute op's output whose only reader is a Relu or a Clip with constant bounds is quantized after
 *       that activation (its statistics are the activation's output); the export removes the activation where
 *       the output grid already clips to its bounds ({@link #removable});</li>
 *   <li>ops that move or select values without computing new ones (Reshape, Flatten, Transpose, Squeeze,
 *       Unsqueeze, Slice, Gather, GatherElements, Expand, Tile, MaxPool, ReduceMax, ReduceMin, Resize,
 *       DepthToSpace, SpaceToDepth; Split, each output) with a quantized input: their outputs are quantized with the input's parameters
 *       ({@link Site#owner()}), so ONNX Runtime drops the Q/DQ around them (its QDQ "drop" rules, which want equal
 *       parameters on both sides) and runs them on the integer codes.</li>
 * </ul>
 *
 * <p><b>{@link QdqProfile#TENSORRT}</b>: the inputs of the quantized Conv/Gemm/MatMul and both inputs of every
 * residual Add (two activation inputs), TensorRT's placement recommendation; no outputs, no folding.
 *
 * <p>In both, a MatMul of two activations (attention) has both inputs quantized ({@link #activationMatMul}).
 *
 * @param profile the profile planned for
 * @param sites   every quantized tensor, in graph order of first appearance
 * @param folded  activation output tensor → the Relu/Clip that produces it from a compute op's output
 */
public record QdqPlacement(QdqProfile profile, List<Site> sites, Map<String, FoldedActivation> folded)
        implements Serializable {

    /** Ops ONNX Runtime runs on integers with quantized inputs and output (QLinearAdd, QLinearConcat, ...). */
    static final Set<String> COMPUTE_OPS = Set.of("Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool");
    /** Ops that move or select values without computing new ones: their output keeps the input's grid. */
    static final Set<String> SHAPE_OPS = Set.of("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "MaxPool",
            "Resize", "Slice", "Gather", "GatherElements", "Expand", "Tile", "ReduceMax", "ReduceMin", "Split", "DepthToSpace",
            "SpaceToDepth");

    /**
     * A quantized activation tensor.
     *
     * @param tensor   the tensor
     * @param owner    the tensor whose calibrated parameters it takes: itself, or a shape-only op's input
     * @param producer the node that computes it as far as quantization is concerned (the compute op for a
     *                 folded activation's output), null for a graph input
     * @param readers  the planned nodes that read it (a quantized op, a shape-only op), in graph order
     */
    public record Site(String tensor, String owner, String producer, String producerOp, List<Reader> readers)
            implements Serializable {
        public boolean ownsParameters() {
            return owner.equals(tensor);
        }
    }

    public record Reader(String node, String opType) implements Serializable {}

    /**
     * A Relu or Clip between a compute op's output {@code input} and the quantized tensor {@code output}.
     *
     * @param min the lower bound (0 for Relu), −∞ when none
     * @param max the upper bound, +∞ for Relu or none
     */
    public record FoldedActivation(String node, String opType, String input, String output, double min, double max)
            implements Serializable {}

    public QdqPlacement {
        sites = List.copyOf(sites);
        folded = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(folded));
    }

    /** The same plan without folding any activation (the export then keeps every Relu and Clip). */
    public QdqPlacement withoutFolding() {
        return new QdqPlacement(profile, sites, Map.of());
    }

    /** The folded activations the export removes with these activation parameters ({@link #removable}), in order. */
    public List<FoldedActivation> removed(Map<String, QuantParams> activations) {
        List<FoldedActivation> out = new ArrayList<>();
        for (FoldedActivation f : folded.values()) {
            QuantParams p = activations.get(f.output());
            if (p != null && removable(f, p)) out.add(f);
        }
        return out;
    }

    /** The tensors that need their own statistics (each site's owner), in order. */
    public List<String> ownedTensors() {
        List<String> out = new ArrayList<>();
        for (Site s : sites) if (s.ownsParameters()) out.add(s.tensor());
        return out;
    }

    /**
     * Whether the output quantization {@code p} reproduces the activation exactly, so the export may drop it:
     * quantization is monotone, so clip-then-quantize equals quantize-alone iff the clip bounds themselves
     * quantize to the grid's ends (zero point at the grid's bottom for Relu; for ReLU6 also the top of the
     * grid at or below 6).
     */
    public static boolean removable(FoldedActivation a, QuantParams p) {
        if (p.perChannel()) return false;
        float s = (float) p.scale(0);
        int z = p.zeroPoint(0);
        boolean lo = a.min() == Double.NEGATIVE_INFINITY
                || AffineQuantizer.quantize((float) a.min(), s, z, p.qmin(), p.qmax()) == p.qmin();
        boolean hi = a.max() == Double.POSITIVE_INFINITY
                || AffineQuantizer.quantize((float) a.max(), s, z, p.qmin(), p.qmax()) == p.qmax();
        return lo && hi;
    }

    /** A float value computed at run time (not a constant, not integer shape arithmetic). */
    static boolean floatActivation(OnnxModel m, Map<String, Integer> types, String t) {
        if (t == null || m.isInitializer(t) || m.constantFloats(t) != null) return false;
        Integer type = types.get(t);
        return type != null && type == TensorProto.DataType.FLOAT_VALUE;
    }

    /**
     * A MatMul of two float activations (attention scores, softmax·V), not excluded by config: it has no weight, so
     * it is quantized on its inputs (and, for ONNX Runtime, its output) only.
     */
    static boolean activationMatMul(OnnxModel m, NodeProto n, Map<String, Integer> types) {
        OpKind kind = OpKind.of(n.getOpType());
        return kind != null && Nodes.defaultDomain(n.getDomain()) && kind.activationsOnly(m, n, () -> types);
    }

    /** The plan of {@code profile} for {@code model}'s quantizable nodes (those the coverage lists as quantized). */
    public static QdqPlacement plan(OnnxModel model, QdqProfile profile) {
        return new Planner(model, profile).plan();
    }

    private static final class Planner {
        private final OnnxModel m;
        private final QdqProfile profile;
        private final Map<String, Integer> types;
        private final Map<String, QuantizableNode> quantizable = new LinkedHashMap<>();
        private final Map<String, String> owners = new LinkedHashMap<>();
        private final Map<String, NodeProto> producers = new LinkedHashMap<>();
        private final Map<String, List<Reader>> readers = new LinkedHashMap<>();
        private final Map<String, FoldedActivation> folded = new LinkedHashMap<>();

        Planner(OnnxModel m, QdqProfile profile) {
            this.m = m;
            this.profile = profile;
            this.types = ElementTypes.infer(m);
            for (QuantizableNode q : m.quantizableNodes()) quantizable.put(q.name(), q);
        }

        /**
         * The nodes whose outputs reach a quantized layer (a Conv/Gemm/MatMul the plan quantizes, an activation
         * MatMul), through any ops. An Add, Mul, Concat or pooling that reaches none is after the network's last layer
         * (a detector's box decoding, score selection and NMS; a head's final Add before a Resize to the output):
         * it stays float, as TensorRT's and ONNX Runtime's users exclude such post-processing, so that its values are
         * the layers' dequantized outputs, not re-quantized scores whose ties reorder the detections.
         */
        private Set<String> leadingToLayers() {
            Set<String> leads = new java.util.HashSet<>();
            List<NodeProto> nodes = m.nodes();
            for (int i = nodes.size() - 1; i >= 0; i--) {
                NodeProto n = nodes.get(i);
                boolean layer = Nodes.defaultDomain(n.getDomain())
                        && (quantizable.containsKey(n.getName()) || activationMatMul(m, n, types));
                if (layer || feedsAny(n, leads)) leads.add(n.getName());
            }
            return leads;
        }

        /** Whether a reader of one of {@code n}'s outputs is in {@code leads}. */
        private boolean feedsAny(NodeProto n, Set<String> leads) {
            for (String out : n.getOutputList()) {
                if (out.isEmpty()) continue;
                for (NodeProto c : m.consumers(out)) if (leads.contains(c.getName())) return true;
            }
            return false;
        }

        QdqPlacement plan() {
            Set<String> leads = profile == QdqProfile.ORT ? leadingToLayers() : Set.of();
            for (NodeProto n : m.nodes()) {
                if (!Nodes.defaultDomain(n.getDomain()) || n.getOutputCount() < 1) continue;
                QuantizableNode q = quantizable.get(n.getName());
                String op = n.getOpType();
                // an Add/Mul/Concat/pooling quantized only before a layer: after the last one it stays float
                boolean beforeLayer = feedsAny(n, leads);
                String scalarOperand = profile == QdqProfile.ORT && beforeLayer ? scalarOperand(n) : null;
                if (q != null) {
                    read(q.input(), n);
                    if (profile == QdqProfile.ORT) output(n);
                } else if (activationMatMul(m, n, types)) {
                    // attention's Q·Kᵀ and softmax·V: both operands quantized, as ONNX Runtime's and TensorRT's
                    // quantizers do for transformers (QLinearMatMul on ONNX Runtime)
                    for (String t : dataInputs(n)) read(t, n);
                    if (profile == QdqProfile.ORT) output(n);
                } else if (scalarOperand != null) {
                    // x + c, x · c with c one constant value and x quantized: QLinearAdd/QLinearMul with c as one
                    // exact code (ConstantOperands)
                    read(scalarOperand, n);
                    output(n);
                } else if (profile == QdqProfile.ORT && COMPUTE_OPS.contains(op) && beforeLayer) {
                    List<String> in = dataInputs(n);
                    if (in.isEmpty() || !in.stream().allMatch(this::floatActivation)) continue;
                    for (String t : in) read(t, n);
                    output(n);
                } else if (profile == QdqProfile.ORT && SHAPE_OPS.contains(op)) {
                    String x = Nodes.input(n, 0);
                    boolean split = op.equals("Split");
                    if (x == null || !owners.containsKey(x) || !split && !singleOutput(n)) continue;
                    read(x, n);
                    for (int k = 0; k < (split ? n.getOutputCount() : 1); k++) {
                        String out = n.getOutput(k);
                        if (out.isEmpty()) continue;
                        owners.putIfAbsent(out, owners.get(x));
                        producers.putIfAbsent(out, n);
                    }
                } else if (profile == QdqProfile.TENSORRT && op.equals("Add")) {
                    List<String> in = dataInputs(n);
                    if (in.size() == 2 && in.stream().allMatch(this::floatActivation)) {
                        for (String t : in) read(t, n);
                    }
                }
            }
            List<Site> sites = new ArrayList<>();
            for (var e : owners.entrySet()) {
                // a graph output nothing reads stays float, as the caller receives it (the export quantizes
                // a tensor for its readers)
                if (m.consumers(e.getKey()).isEmpty()) {
                    folded.remove(e.getKey());
                    continue;
                }
                NodeProto p = producers.get(e.getKey());
                sites.add(new Site(e.getKey(), e.getValue(), p == null ? null : p.getName(),
                        p == null ? null : p.getOpType(), readers.getOrDefault(e.getKey(), List.of())));
            }
            return new QdqPlacement(profile, sites, folded);
        }

        private List<String> dataInputs(NodeProto n) {
            List<String> in = new ArrayList<>();
            int count = n.getOpType().endsWith("Pool") ? 1 : n.getInputCount();
            for (int i = 0; i < count; i++) {
                String t = Nodes.input(n, i);
                if (t != null && !in.contains(t)) in.add(t);
            }
            return in;
        }

        /**
         * The activation of an Add or Mul whose other operand is a one-value float constant, when that activation is
         * quantized already (its producer is planned); else null.
         */
        private String scalarOperand(NodeProto n) {
            String op = n.getOpType();
            if (!op.equals("Add") && !op.equals("Mul") || n.getInputCount() != 2 || n.getOutputCount() != 1) return null;
            for (int k = 0; k < 2; k++) {
                String x = n.getInput(k), c = n.getInput(1 - k);
                if (floatActivation(x) && owners.containsKey(x) && m.isInitializer(c) && m.scalarConstant(c) != null) {
                    return x;
                }
            }
            return null;
        }

        private boolean floatActivation(String t) {
            return QdqPlacement.floatActivation(m, types, t);
        }

        /** A shape-only op whose extra outputs (MaxPool's indices) nobody reads. */
        private boolean singleOutput(NodeProto n) {
            for (int k = 1; k < n.getOutputCount(); k++) {
                String o = n.getOutput(k);
                if (!o.isEmpty() && (!m.consumers(o).isEmpty() || m.isGraphOutput(o))) return false;
            }
            return true;
        }

        private void read(String t, NodeProto reader) {
            if (!owners.containsKey(t)) {
                owners.put(t, t);
                NodeProto p = m.producer(t);
                if (p != null) producers.put(t, p);
            }
            List<Reader> r = readers.computeIfAbsent(t, k -> new ArrayList<>());
            if (r.stream().noneMatch(x -> x.node().equals(reader.getName()))) {
                r.add(new Reader(reader.getName(), reader.getOpType()));
            }
        }

        /** The op's output, quantized after its only reader when that is a Relu or a constant-bound Clip. */
        private void output(NodeProto n) {
            String out = n.getOutput(0);
            if (owners.containsKey(out)) return;
            String quantized = out;
            List<NodeProto> rs = m.consumers(out);
            if (rs.size() == 1 && !m.isGraphOutput(out)) {
                NodeProto a = rs.get(0);
                double[] bounds = null;
                if (Nodes.defaultDomain(a.getDomain()) && a.getInputCount() > 0 && a.getInput(0).equals(out)
                        && a.getOutputCount() > 0) {
                    if (a.getOpType().equals("Relu")) bounds = new double[] {0, Double.POSITIVE_INFINITY};
                    else if (a.getOpType().equals("Clip")) bounds = QuantizableNodeFinder.clipBounds(m, a);
                }
                // a subgraph reading the activation's output by name would read the op's output once the
                // activation is gone: the activation stays, quantized at its own output
                if (bounds != null && !Subgraphs.readInside(m, a.getOutput(0))) {
                    quantized = a.getOutput(0);
                    folded.put(quantized, new FoldedActivation(a.getName(), a.getOpType(), out, quantized, bounds[0], bounds[1]));
                }
            }
            owners.put(quantized, quantized);
            producers.put(quantized, n);
        }
    }
}
