package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/** Finds the Conv, ConvTranspose, Gemm and MatMul nodes of a model that quantcal quantizes; see {@link QuantizableNode}. */
final class QuantizableNodeFinder {

    private static final long[] NONE = new long[0];

    private QuantizableNodeFinder() {}

    static List<QuantizableNode> find(OnnxModel m) {
        List<QuantizableNode> out = new ArrayList<>();
        java.util.Set<String> excluded = m.excluded();
        for (NodeProto n : m.nodes()) {
            if (!Nodes.defaultDomain(n.getDomain()) || n.getOutputCount() < 1 || excluded.contains(n.getName())) continue;
            QuantizableNode q = switch (n.getOpType()) {
                case "Conv" -> conv(m, n);
                case "ConvTranspose" -> convTranspose(m, n);
                case "Gemm" -> gemm(m, n);
                case "MatMul" -> matMul(m, n);
                default -> null;
            };
            if (q != null) out.add(q);
        }
        return out;
    }

    private static QuantizableNode conv(OnnxModel m, NodeProto n) {
        String x = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        // A weight computed at run time has no fixed integer codes, a constant input no activation to
        // calibrate: not quantizable.
        if (x == null || w == null || !m.isInitializer(w) || m.isInitializer(x)) return null;
        String where = m.source() + ": " + Nodes.describe(n);
        long[] ws = floatWeightShape(m, n, w);
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
        long[] strides = perAxis(where, "strides", Nodes.intsAttr(n, "strides"), r, 1);
        long[] dilations = perAxis(where, "dilations", Nodes.intsAttr(n, "dilations"), r, 1);
        long[] pads = pads(m, n, where, x, kernel, strides, dilations);
        String b = Nodes.input(n, 2);
        if (b != null) checkBias(m, where, b, ws[0]);
        return withActivation(m, n, x, w, b, ws, (int) group, strides, pads, dilations, false, 0);
    }

    /**
     * ConvTranspose with weight [C_in, C_out/group, k...]: the output channels are on axis 1, where ONNX Runtime's
     * quantizer puts a ConvTranspose's per-channel weight scales. Only group 1: with groups, one axis-1 scale would
     * serve an output channel of every group (see {@link Coverage}). The search passes (EasyQuant, AdaRound) and the
     * DFQ passes keep it at its calibrated parameters; the search passes compute it as a Conv
     * ({@link QuantizableNode#as2d}).
     */
    private static QuantizableNode convTranspose(OnnxModel m, NodeProto n) {
        String x = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        if (x == null || w == null || !m.isInitializer(w) || m.isInitializer(x) || Nodes.intAttr(n, "group", 1) != 1) {
            return null;
        }
        String where = m.source() + ": " + Nodes.describe(n);
        long[] ws = floatWeightShape(m, n, w);
        if (ws.length < 3) {
            throw new ModelException(where + ": weight " + w + " has shape " + Arrays.toString(ws)
                    + ", expected [C_in, C_out/group, kernel...]");
        }
        int r = ws.length - 2;
        long[] strides = perAxis(where, "strides", Nodes.intsAttr(n, "strides"), r, 1);
        long[] dilations = perAxis(where, "dilations", Nodes.intsAttr(n, "dilations"), r, 1);
        String b = Nodes.input(n, 2);
        if (b != null) checkBias(m, where, b, ws[1]);
        return withActivation(m, n, x, w, b, ws, 1, strides, transposedPads(n, where, r), dilations, false, 1);
    }

    /**
     * A ConvTranspose's pads as its output size needs them: [begin..., end − output_padding...] (the output grows by
     * output_padding at the end); empty when output_shape or auto_pad SAME_UPPER/SAME_LOWER derive them from the
     * input's size (such a node is calibrated and exported, not searched).
     */
    private static long[] transposedPads(NodeProto n, String where, int r) {
        String autoPad = Nodes.stringAttr(n, "auto_pad", "NOTSET");
        if (Nodes.intsAttr(n, "output_shape") != null || autoPad.startsWith("SAME")) return new long[0];
        long[] pads = autoPad.equals("VALID") || Nodes.intsAttr(n, "pads") == null ? new long[2 * r] : Nodes.intsAttr(n, "pads");
        if (pads.length != 2 * r) {
            throw new ModelException(where + ": pads " + Arrays.toString(pads) + ", expected " + 2 * r + " values");
        }
        long[] outPad = perAxis(where, "output_padding", Nodes.intsAttr(n, "output_padding"), r, 0);
        long[] p = pads.clone();
        for (int a = 0; a < r; a++) p[r + a] -= outPad[a];
        return p;
    }

    private static QuantizableNode gemm(OnnxModel m, NodeProto n) {
        String a = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        if (a == null || w == null || !m.isInitializer(w) || m.isInitializer(a)) return null;
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
        long[] ws = floatWeightShape(m, n, w);
        if (ws.length != 2) {
            throw new ModelException(where + ": weight " + w + " has shape " + Arrays.toString(ws) + ", expected rank 2");
        }
        boolean transB = Nodes.intAttr(n, "transB", 0) != 0;
        int axis = transB ? 0 : 1;
        if (c != null) checkBias(m, where, c, ws[axis]);
        return withActivation(m, n, a, w, c, ws, 1, NONE, NONE, NONE, transB, axis);
    }

    private static QuantizableNode matMul(OnnxModel m, NodeProto n) {
        String a = Nodes.input(n, 0);
        String w = Nodes.input(n, 1);
        // Two activations (attention scores) or a batched constant: no per-layer weight to quantize.
        if (a == null || w == null || !m.isInitializer(w) || m.isInitializer(a)
                || m.initializer(w).getDimsCount() != 2) {
            return null;
        }
        long[] ws = floatWeightShape(m, n, w);
        return withActivation(m, n, a, w, null, ws, 1, NONE, NONE, NONE, false, 1);
    }

    private static long[] floatWeightShape(OnnxModel m, NodeProto n, String w) {
        TensorProto t = m.initializer(w);
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            throw new ModelException(m.source() + ": " + Nodes.describe(n) + ": weight " + w + " is "
                    + Tensors.typeName(t.getDataType()) + ", expected a FLOAT initializer (is the model already quantized?)");
        }
        return Tensors.dims(t);
    }

    /** A bias must be a float constant with one value per output channel ([C] or, for Gemm, [1, C]). */
    private static void checkBias(OnnxModel m, String where, String b, long channels) {
        if (!m.isInitializer(b)) {
            throw new ModelException(where + ": bias " + b + " is computed at run time, expected an initializer");
        }
        TensorProto t = m.initializer(b);
        long[] d = Tensors.dims(t);
        boolean vector = d.length == 1 || (d.length == 2 && d[0] == 1);
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE || !vector || d[d.length - 1] != channels) {
            throw new ModelException(where + ": bias " + b + " is " + Tensors.typeName(t.getDataType()) + " of shape "
                    + Arrays.toString(d) + ", expected FLOAT of shape [" + channels + "]");
        }
    }

    private static long[] perAxis(String where, String attr, long[] v, int r, long dflt) {
        if (v == null) {
            long[] d = new long[r];
            Arrays.fill(d, dflt);
            return d;
        }
        if (v.length != r) {
            throw new ModelException(where + ": " + attr + " " + Arrays.toString(v) + " has " + v.length
                    + " values, expected " + r + " (one per spatial axis)");
        }
        return v;
    }

    /** Explicit pads [begin..., end...]; auto_pad resolved with the ONNX formulas where shapes are known. */
    private static long[] pads(OnnxModel m, NodeProto n, String where, String x, long[] kernel, long[] strides,
                               long[] dilations) {
        int r = kernel.length;
        String autoPad = Nodes.stringAttr(n, "auto_pad", "NOTSET");
        switch (autoPad) {
            case "NOTSET", "" -> {
                long[] p = Nodes.intsAttr(n, "pads");
                if (p == null) return new long[2 * r];
                if (p.length != 2 * r) {
                    throw new ModelException(where + ": pads " + Arrays.toString(p) + " has " + p.length
                            + " values, expected " + 2 * r);
                }
                return p;
            }
            case "VALID" -> {
                return new long[2 * r];
            }
            case "SAME_UPPER", "SAME_LOWER" -> {
                long[] in;
                try {
                    in = m.shape(x);
                } catch (ModelException e) {
                    in = null;
                }
                if (in == null || in.length != r + 2 || Arrays.stream(in, 2, r + 2).anyMatch(d -> d <= 0)) {
                    throw new ModelException(where + ": auto_pad " + autoPad + " needs the spatial shape of input "
                            + x + ", which the model does not declare (run shape inference, or export explicit pads)");
                }
                long[] p = new long[2 * r];
                for (int i = 0; i < r; i++) {
                    long size = in[i + 2];
                    long outSize = (size + strides[i] - 1) / strides[i];
                    long total = Math.max(0, (outSize - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
                    // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning
                    long begin = autoPad.equals("SAME_UPPER") ? total / 2 : total - total / 2;
                    p[i] = begin;
                    p[i + r] = total - begin;
                }
                return p;
            }
            default -> throw new ModelException(where + ": auto_pad " + autoPad
                    + ", expected NOTSET, VALID, SAME_UPPER or SAME_LOWER");
        }
    }

    /**
     * The node's following Relu or Clip counts as its activation only if it is the sole reader of the
     * node's output (and that output is not a graph output): only then can the two be quantized as one
     * layer without changing what other readers see.
     */
    private static QuantizableNode withActivation(OnnxModel m, NodeProto n, String input, String w, String b,
                                                  long[] ws, int group, long[] strides, long[] pads,
                                                  long[] dilations, boolean transB, int axis) {
        String out = n.getOutput(0);
        String act = null;
        String actOut = null;
        double lo = Double.NEGATIVE_INFINITY;
        double hi = Double.POSITIVE_INFINITY;
        List<NodeProto> readers = m.consumers(out);
        if (readers.size() == 1 && !m.isGraphOutput(out)) {
            NodeProto a = readers.get(0);
            if (Nodes.defaultDomain(a.getDomain()) && a.getInputCount() > 0 && a.getInput(0).equals(out)
                    && a.getOutputCount() > 0) {
                if (a.getOpType().equals("Relu")) {
                    act = "Relu";
                    actOut = a.getOutput(0);
                    lo = 0;
                } else if (a.getOpType().equals("Clip")) {
                    double[] bounds = clipBounds(m, a);
                    if (bounds != null) {
                        act = "Clip";
                        actOut = a.getOutput(0);
                        lo = bounds[0];
                        hi = bounds[1];
                    }
                }
            }
        }
        return new QuantizableNode(n.getName(), n.getOpType(), input, w, b, out, act, actOut, ws, group, strides,
                pads, dilations, transB, axis, lo, hi);
    }

    /** Clip's [min, max]: attributes before opset 11, constant inputs since; null if computed at run time. */
    static double[] clipBounds(OnnxModel m, NodeProto clip) {
        if (m.opset() < 11) {
            return new double[] {Nodes.floatAttr(clip, "min", Double.NEGATIVE_INFINITY),
                                 Nodes.floatAttr(clip, "max", Double.POSITIVE_INFINITY)};
        }
        double[] b = {Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY};
        for (int i = 1; i <= 2; i++) {
            String t = Nodes.input(clip, i);
            if (t == null) continue;
            float[] v = m.constantFloats(t);
            if (v == null || v.length != 1) return null;
            b[i - 1] = v[0];
        }
        return b;
    }
}
