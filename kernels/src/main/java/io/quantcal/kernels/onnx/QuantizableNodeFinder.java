package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * Finds the nodes of a model that quantcal quantizes (each {@link OpKind} reads its own; see {@link QuantizableNode}),
 * with the node readers' shared parts: weight and bias checks, per-axis attributes, pads, the fused activation.
 */
final class QuantizableNodeFinder {

    private QuantizableNodeFinder() {}

    static List<QuantizableNode> find(OnnxModel m) {
        List<QuantizableNode> out = new ArrayList<>();
        java.util.Set<String> excluded = m.excluded();
        for (NodeProto n : m.nodes()) {
            if (!Nodes.defaultDomain(n.getDomain()) || n.getOutputCount() < 1 || excluded.contains(n.getName())) continue;
            OpKind kind = OpKind.of(n.getOpType());
            QuantizableNode q = kind == null ? null : kind.read(m, n);
            if (q != null) out.add(q);
        }
        return out;
    }

    /**
     * Whether node inputs {@code x} and {@code w} are an activation and a constant weight: a weight computed at run
     * time has no fixed integer codes, a constant input no activation to calibrate.
     */
    static boolean activationTimesConstant(OnnxModel m, String x, String w) {
        return x != null && w != null && m.isInitializer(w) && !m.isInitializer(x);
    }

    static long[] floatWeightShape(OnnxModel m, NodeProto n, String w) {
        TensorProto t = m.initializer(w);
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            // a float64 weight would lose bits as float32 (float16 and bfloat16 models are raised before this)
            String why = t.getDataType() == TensorProto.DataType.DOUBLE_VALUE
                    ? OnnxModel.FLOAT32_ONLY
                    : "is the model already quantized?";
            throw new ModelException(m.source() + ": " + Nodes.describe(n) + ": weight " + w + " is "
                    + Tensors.typeName(t.getDataType()) + ", expected a FLOAT initializer (" + why + ")");
        }
        return Tensors.dims(t);
    }

    /** Whether node {@code n} (Conv, ConvTranspose, Gemm) has a bias the graph computes at run time: it stays FP32. */
    static boolean runtimeBias(OnnxModel m, NodeProto n) {
        String b = Nodes.input(n, 2);
        return b != null && !m.isInitializer(b);
    }

    /** A bias must be a float constant with one value per output channel ([C] or, for Gemm, [1, C]). */
    static void checkBias(OnnxModel m, String where, String b, long channels) {
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

    static long[] perAxis(String where, String attr, long[] v, int r, long dflt) {
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
    static long[] pads(OnnxModel m, NodeProto n, String where, String x, long[] kernel, long[] strides,
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
    static QuantizableNode withActivation(OnnxModel m, NodeProto n, String input, String w, String b,
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
