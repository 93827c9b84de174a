package io.quantcal.kernels.onnx;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.layer.WeightLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import onnx.Onnx.NodeProto;

/**
 * What quantcal knows of one kind of quantizable ONNX operator, in one place: how its node is read (which inputs are
 * the activation, the weight and the bias, its attributes), its weight's layout and output-channel axis, how many
 * products one output sums, why a node of its kind is left in FP32, whether a BatchNormalization folds into it, and
 * the layer forward that computes it ({@link LayerOp}). Adding an operator is adding one kind here.
 *
 * <p>The per-layer passes (EasyQuant, AdaRound, learn, stochastic rounding) compute every node through {@link #as2d}:
 * a 2-D Conv, a Gemm or a MatMul. The data-free passes (equalization, bias absorption, bias correction) take the
 * kinds whose {@link #dataFree} is true.
 */
public sealed interface OpKind permits OpKind.Conv, OpKind.ConvTranspose, OpKind.Gemm, OpKind.MatMul {

    Conv CONV = new Conv();
    ConvTranspose CONV_TRANSPOSE = new ConvTranspose();
    Gemm GEMM = new Gemm();
    MatMul MATMUL = new MatMul();

    /** Every kind, in the order the coverage report and the README list them. */
    List<OpKind> ALL = List.of(CONV, CONV_TRANSPOSE, GEMM, MATMUL);

    /** The ONNX op types quantcal quantizes. */
    Set<String> OP_TYPES = Set.of("Conv", "ConvTranspose", "Gemm", "MatMul");

    /** The kind of ONNX op type {@code opType} (default domain), or null when quantcal does not quantize it. */
    static OpKind of(String opType) {
        return switch (opType) {
            case "Conv" -> CONV;
            case "ConvTranspose" -> CONV_TRANSPOSE;
            case "Gemm" -> GEMM;
            case "MatMul" -> MATMUL;
            default -> null;
        };
    }

    /** The ONNX op type, as the scale table's {@code op_type} column spells it. */
    String opType();

    /**
     * Node {@code n} of {@code m} as a quantizable node, or null when it has no constant weight to quantize (a weight
     * computed at run time, a constant activation; {@link #whyLeftOut} says which). A node that is malformed for its
     * op is a {@link ModelException} naming it.
     */
    QuantizableNode read(OnnxModel m, NodeProto n);

    /** Why node {@code n} of this kind, which {@link #read} did not take, stays in FP32. */
    default String whyLeftOut(OnnxModel m, NodeProto n) {
        if (m.excluded().contains(n.getName())) return "excluded by config (quantcal.quantization.exclude)";
        String x = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        if (x != null && m.isInitializer(x)) return "input " + x + " is a constant: no activation to calibrate";
        if (w == null) return "no weight input";
        if (!m.isInitializer(w)) return "weight " + w + " is computed at run time (not a constant, even after folding)";
        if (QuantizableNodeFinder.runtimeBias(m, n)) {
            return "bias " + Nodes.input(n, 2) + " is computed at run time (not a constant, even after folding)";
        }
        return "not quantizable";
    }

    /**
     * Whether node {@code n}, which {@link #read} did not take, is quantized on its activations alone (a MatMul of two
     * float activations: both inputs get Q/DQ, there is no weight). {@code types} gives the model's element types.
     */
    default boolean activationsOnly(OnnxModel m, NodeProto n, java.util.function.Supplier<java.util.Map<String, Integer>> types) {
        return false;
    }

    /**
     * The axis of this node's weight that holds its output channels (where per-channel parameters run), or −1 when a
     * following BatchNormalization cannot be folded into this node ({@link BatchNormFolder}).
     */
    default int batchNormAxis(NodeProto n) {
        return -1;
    }

    /** Whether the data-free passes (cross-layer equalization, high-bias absorption, bias correction) take this kind. */
    default boolean dataFree() {
        return false;
    }

    /** Why the per-layer passes keep node {@code q} at its calibrated parameters, or null when they take it. */
    default String whyNotSearchable(QuantizableNode q) {
        return null;
    }

    /** Node {@code q} as the layer kernels compute it: a 2-D Conv, a Gemm or a MatMul (see {@link QuantizableNode#as2d}). */
    default QuantizableNode as2d(QuantizableNode q) {
        return q;
    }

    /** How {@code q}'s ONNX weight maps onto the layer problem's rows W [outChannels, depth]. */
    WeightLayout layout(QuantizableNode q);

    /** How many products one output value sums: the depth of a row of W (per group for a Conv). */
    long reductionLength(QuantizableNode q);

    /**
     * The layer forward of {@code q}, which must be what {@link #as2d} gives (a kind that lowers to another answers for
     * that one), with its fused activation.
     */
    LayerOp forward(QuantizableNode q, Activation activation);

    /** The attributes {@link QuantizableNode#toString} shows, after the weight. */
    default String describe(QuantizableNode q) {
        return "";
    }

    /** ONNX Conv, 1-D or 2-D (or more: calibrated and exported, not searched): x [N, C, ...], w [C_out, C_in/group, k...]. */
    final class Conv implements OpKind {
        private Conv() {}

        @Override public String opType() { return "Conv"; }

        @Override
        public QuantizableNode read(OnnxModel m, NodeProto n) {
            String x = Nodes.input(n, 0);
            String w = Nodes.input(n, 1);
            if (!QuantizableNodeFinder.activationTimesConstant(m, x, w) || QuantizableNodeFinder.runtimeBias(m, n)) return null;
            String where = m.source() + ": " + Nodes.describe(n);
            long[] ws = QuantizableNodeFinder.floatWeightShape(m, n, w);
            if (ws.length < 3) {
                throw new ModelException(where + ": weight " + w + " has shape " + Arrays.toString(ws)
                        + ", expected [C_out, C_in/group, kernel...]");
            }
            int r = ws.length - 2;
            long group = Nodes.intAttr(n, "group", 1);
            if (group < 1 || ws[0] % group != 0) {
                throw new ModelException(where + ": group " + group + " does not divide the " + ws[0] + " output channels");
            }
            long[] kernel = Arrays.copyOfRange(ws, 2, ws.length);
            long[] ks = Nodes.intsAttr(n, "kernel_shape");
            if (ks != null && !Arrays.equals(ks, kernel)) {
                throw new ModelException(where + ": kernel_shape " + Arrays.toString(ks) + " disagrees with weight "
                        + w + " of shape " + Arrays.toString(ws));
            }
            long[] strides = QuantizableNodeFinder.perAxis(where, "strides", Nodes.intsAttr(n, "strides"), r, 1);
            long[] dilations = QuantizableNodeFinder.perAxis(where, "dilations", Nodes.intsAttr(n, "dilations"), r, 1);
            long[] pads = QuantizableNodeFinder.pads(m, n, where, x, kernel, strides, dilations);
            String b = Nodes.input(n, 2);
            if (b != null) QuantizableNodeFinder.checkBias(m, where, b, ws[0]);
            return QuantizableNodeFinder.withActivation(m, n, x, w, b, ws, (int) group, strides, pads, dilations, false, 0);
        }

        @Override
        public int batchNormAxis(NodeProto n) {
            return 0;
        }

        @Override
        public boolean dataFree() {
            return true;
        }

        @Override
        public String whyNotSearchable(QuantizableNode q) {
            long[] ws = q.weightShape();
            return ws.length > 4 ? "Conv over " + (ws.length - 2) + " spatial axes" : null;
        }

        /** A Conv1d is the Conv2d of height 1 that computes the same thing (see {@link QuantizableNode#as2d}). */
        @Override
        public QuantizableNode as2d(QuantizableNode q) {
            return q.weightShape().length == 3 ? lift1d(q) : q;
        }

        @Override
        public WeightLayout layout(QuantizableNode q) {
            return WeightLayout.ROWS;
        }

        @Override
        public long reductionLength(QuantizableNode q) {
            long[] ws = q.weightShape();
            long d = 1;
            for (int a = 1; a < ws.length; a++) d *= ws[a];
            return d;
        }

        @Override
        public LayerOp forward(QuantizableNode q, Activation activation) {
            return new LayerOp.Conv(new ConvSpec(q.strides(), q.pads(), q.dilations(), q.group()), activation);
        }

        @Override
        public String describe(QuantizableNode q) {
            return ", group " + q.group() + ", strides " + Arrays.toString(q.strides()) + ", pads " + Arrays.toString(q.pads())
                    + ", dilations " + Arrays.toString(q.dilations());
        }
    }

    /**
     * ONNX ConvTranspose, group 1: w [C_in, C_out, k...], output channels on axis 1 (where ONNX Runtime's quantizer puts
     * its per-channel weight scales). With groups one axis-1 scale would serve an output channel of every group, so a
     * grouped one stays FP32. The search passes compute it as the Conv over the zero-inserted input
     * ({@link QuantizableNode#as2d}); the data-free passes leave it alone.
     */
    final class ConvTranspose implements OpKind {
        private ConvTranspose() {}

        @Override public String opType() { return "ConvTranspose"; }

        @Override
        public QuantizableNode read(OnnxModel m, NodeProto n) {
            String x = Nodes.input(n, 0);
            String w = Nodes.input(n, 1);
            if (!QuantizableNodeFinder.activationTimesConstant(m, x, w) || Nodes.intAttr(n, "group", 1) != 1
                    || QuantizableNodeFinder.runtimeBias(m, n)) {
                return null;
            }
            String where = m.source() + ": " + Nodes.describe(n);
            long[] ws = QuantizableNodeFinder.floatWeightShape(m, n, w);
            if (ws.length < 3) {
                throw new ModelException(where + ": weight " + w + " has shape " + Arrays.toString(ws)
                        + ", expected [C_in, C_out/group, kernel...]");
            }
            int r = ws.length - 2;
            long[] strides = QuantizableNodeFinder.perAxis(where, "strides", Nodes.intsAttr(n, "strides"), r, 1);
            long[] dilations = QuantizableNodeFinder.perAxis(where, "dilations", Nodes.intsAttr(n, "dilations"), r, 1);
            String b = Nodes.input(n, 2);
            if (b != null) QuantizableNodeFinder.checkBias(m, where, b, ws[1]);
            return QuantizableNodeFinder.withActivation(m, n, x, w, b, ws, 1, strides, padsFor(n, where, r), dilations, false, 1);
        }

        /**
         * A ConvTranspose's pads as its output size needs them: [begin..., end − output_padding...] (the output grows by
         * output_padding at the end); empty when output_shape or auto_pad SAME_UPPER/SAME_LOWER derive them from the
         * input's size (such a node is calibrated and exported, not searched).
         */
        private static long[] padsFor(NodeProto n, String where, int r) {
            String autoPad = Nodes.stringAttr(n, "auto_pad", "NOTSET");
            if (Nodes.intsAttr(n, "output_shape") != null || autoPad.startsWith("SAME")) return new long[0];
            long[] pads = autoPad.equals("VALID") || Nodes.intsAttr(n, "pads") == null ? new long[2 * r] : Nodes.intsAttr(n, "pads");
            if (pads.length != 2 * r) {
                throw new ModelException(where + ": pads " + Arrays.toString(pads) + ", expected " + 2 * r + " values");
            }
            long[] outPad = QuantizableNodeFinder.perAxis(where, "output_padding", Nodes.intsAttr(n, "output_padding"), r, 0);
            long[] p = pads.clone();
            for (int a = 0; a < r; a++) p[r + a] -= outPad[a];
            return p;
        }

        @Override
        public String whyLeftOut(OnnxModel m, NodeProto n) {
            long group = Nodes.intAttr(n, "group", 1);
            if (group != 1 && !m.excluded().contains(n.getName())) {
                return "grouped ConvTranspose (group " + group + "): its per-channel weight axis (1) would share one scale"
                        + " among the groups' output channels";
            }
            return OpKind.super.whyLeftOut(m, n);
        }

        @Override
        public int batchNormAxis(NodeProto n) {
            return Nodes.intAttr(n, "group", 1) == 1 ? 1 : -1;
        }

        @Override
        public String whyNotSearchable(QuantizableNode q) {
            long[] ws = q.weightShape();
            if (ws.length > 4) return "ConvTranspose over " + (ws.length - 2) + " spatial axes";
            if (q.pads().length == 0) return "ConvTranspose whose pads come from output_shape or auto_pad";
            for (long v : transposedPads(lift1d(q))) {
                if (v < 0) return "ConvTranspose with pads larger than dilation·(kernel − 1)";
            }
            return null;
        }

        /**
         * The Conv with stride 1, dilations d and pads d·(k − 1) − b, d·(k − 1) − e over the input with s − 1 zeros
         * between neighbours, weight [C_out, C_in, k...] flipped along every spatial axis, output channels on axis 0.
         */
        @Override
        public QuantizableNode as2d(QuantizableNode q) {
            QuantizableNode t = lift1d(q);
            long[] ws = t.weightShape();
            return new QuantizableNode(q.name(), "Conv", q.input(), q.weight(), q.bias(), q.output(), q.activation(),
                    q.activationOutput(), new long[] {ws[1], ws[0], ws[2], ws[3]}, 1, new long[] {1, 1}, transposedPads(t),
                    t.dilations(), false, 0, q.clipMin(), q.clipMax());
        }

        @Override
        public WeightLayout layout(QuantizableNode q) {
            return WeightLayout.CONV_TRANSPOSE;
        }

        @Override
        public long reductionLength(QuantizableNode q) {
            long[] ws = q.weightShape();
            long d = ws[0];
            for (int a = 2; a < ws.length; a++) d *= ws[a];
            return d;
        }

        @Override
        public LayerOp forward(QuantizableNode q, Activation activation) {
            throw new IllegalArgumentException("node " + q.name() + ": a ConvTranspose is computed as its Conv (as2d first)");
        }

        @Override
        public String describe(QuantizableNode q) {
            return CONV.describe(q);
        }

        /** A 2-D ConvTranspose's equivalent Conv pads: d·(k − 1) − pad on each side. */
        private static long[] transposedPads(QuantizableNode t) {
            long[] ws = t.weightShape(), dl = t.dilations(), pads = t.pads();
            long[] p = new long[4];
            for (int a = 0; a < 2; a++) {
                long reach = dl[a] * (ws[2 + a] - 1);
                p[a] = reach - pads[a];
                p[2 + a] = reach - pads[2 + a];
            }
            return p;
        }
    }

    /** ONNX Gemm with alpha = beta = 1 and transA = 0: a [N, K], B [K, M] (or [M, K] with transB), C [M]. */
    final class Gemm implements OpKind {
        private Gemm() {}

        @Override public String opType() { return "Gemm"; }

        @Override
        public QuantizableNode read(OnnxModel m, NodeProto n) {
            String a = Nodes.input(n, 0);
            String w = Nodes.input(n, 1);
            if (!QuantizableNodeFinder.activationTimesConstant(m, a, w) || QuantizableNodeFinder.runtimeBias(m, n)) return null;
            String where = m.source() + ": " + Nodes.describe(n);
            String c = Nodes.input(n, 2);
            double alpha = Nodes.floatAttr(n, "alpha", 1.0);
            double beta = Nodes.floatAttr(n, "beta", 1.0);
            // Scaled products would have to be folded into the weight and bias first; quantcal does not guess.
            if (alpha != 1.0) {
                throw new ModelException(where + ": alpha = " + alpha + ", expected 1 (fold alpha into the weight)");
            }
            if (c != null && beta != 1.0) {
                throw new ModelException(where + ": beta = " + beta + ", expected 1 (fold beta into the bias)");
            }
            if (Nodes.intAttr(n, "transA", 0) != 0) {
                throw new ModelException(where + ": transA = 1, expected 0 (the input activation must be [M, K])");
            }
            long[] ws = QuantizableNodeFinder.floatWeightShape(m, n, w);
            if (ws.length != 2) {
                throw new ModelException(where + ": weight " + w + " has shape " + Arrays.toString(ws) + ", expected rank 2");
            }
            boolean transB = Nodes.intAttr(n, "transB", 0) != 0;
            int axis = transB ? 0 : 1;
            if (c != null) QuantizableNodeFinder.checkBias(m, where, c, ws[axis]);
            return QuantizableNodeFinder.withActivation(m, n, a, w, c, ws, 1, new long[0], new long[0], new long[0], transB, axis);
        }

        @Override
        public WeightLayout layout(QuantizableNode q) {
            return q.transB() ? WeightLayout.ROWS : WeightLayout.TRANSPOSED;
        }

        @Override
        public long reductionLength(QuantizableNode q) {
            long[] ws = q.weightShape();
            return q.transB() ? ws[1] : ws[0];
        }

        @Override
        public LayerOp forward(QuantizableNode q, Activation activation) {
            return new LayerOp.Gemm(q.transB(), activation);
        }

        @Override
        public String describe(QuantizableNode q) {
            return ", transB " + q.transB();
        }
    }

    /**
     * ONNX MatMul with a constant rank-2 B [K, M]: a [..., K]. A MatMul of two activations (attention) has no weight:
     * the export quantizes both inputs ({@link QdqPlacement#activationMatMul}) and the coverage report says so.
     */
    final class MatMul implements OpKind {
        private MatMul() {}

        @Override public String opType() { return "MatMul"; }

        @Override
        public QuantizableNode read(OnnxModel m, NodeProto n) {
            String a = Nodes.input(n, 0);
            String w = Nodes.input(n, 1);
            // Two activations (attention scores) or a batched constant: no per-layer weight to quantize.
            if (!QuantizableNodeFinder.activationTimesConstant(m, a, w) || m.initializer(w).getDimsCount() != 2) return null;
            long[] ws = QuantizableNodeFinder.floatWeightShape(m, n, w);
            return QuantizableNodeFinder.withActivation(m, n, a, w, null, ws, 1, new long[0], new long[0], new long[0], false, 1);
        }

        /** A MatMul of two float activations (attention scores, softmax·V), not excluded by config. */
        @Override
        public boolean activationsOnly(OnnxModel m, NodeProto n, java.util.function.Supplier<java.util.Map<String, Integer>> types) {
            return !m.excluded().contains(n.getName()) && QdqPlacement.floatActivation(m, types.get(), Nodes.input(n, 0))
                    && QdqPlacement.floatActivation(m, types.get(), Nodes.input(n, 1));
        }

        @Override
        public String whyLeftOut(OnnxModel m, NodeProto n) {
            String x = Nodes.input(n, 0);
            String w = Nodes.input(n, 1);
            if (x != null && m.isInitializer(x) && w != null && !m.isInitializer(w) && !m.excluded().contains(n.getName())) {
                // W · x left as it is by ConstantFirstMatMul: W not a 2-D float constant, or x of unknown rank
                return "constant first operand " + x + " (W · x): quantcal writes such a MatMul as (xᵀ · Wᵀ)ᵀ when W is a"
                        + " 2-D float constant and the rank of " + w + " is known (declared in the model's value_info, or"
                        + " given by its producer); export the product as x · Wᵀ to quantize it otherwise";
            }
            if (m.excluded().contains(n.getName()) || w == null || (x != null && m.isInitializer(x))) {
                return OpKind.super.whyLeftOut(m, n);
            }
            if (!m.isInitializer(w)) {
                return "both inputs are computed at run time (" + x + " x " + w + ") but are not both float activations"
                        + " (an integer operand?)";
            }
            return "weight " + w + " has rank " + m.initializer(w).getDimsCount() + ", expected 2 (a batched constant)";
        }

        @Override
        public WeightLayout layout(QuantizableNode q) {
            return WeightLayout.TRANSPOSED;
        }

        @Override
        public long reductionLength(QuantizableNode q) {
            return q.weightShape()[0];
        }

        @Override
        public LayerOp forward(QuantizableNode q, Activation activation) {
            return new LayerOp.MatMul(activation);
        }
    }

    /** A rank-3 Conv or ConvTranspose as the same op over [1, L] (height 1); else {@code q}. */
    private static QuantizableNode lift1d(QuantizableNode q) {
        long[] ws = q.weightShape();
        if (ws.length != 3) return q;
        long[] strides = q.strides(), dilations = q.dilations(), pads = q.pads();
        long[] w = {ws[0], ws[1], 1, ws[2]};
        long[] st = {1, strides.length == 1 ? strides[0] : 1};
        long[] dl = {1, dilations.length == 1 ? dilations[0] : 1};
        long[] pd = pads.length == 2 ? new long[] {0, pads[0], 0, pads[1]} : new long[] {0, 0, 0, 0};
        return new QuantizableNode(q.name(), q.opType(), q.input(), q.weight(), q.bias(), q.output(), q.activation(),
                q.activationOutput(), w, q.group(), st, pd, dl, q.transB(), q.weightAxis(), q.clipMin(), q.clipMax());
    }
}
