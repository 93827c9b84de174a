package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * A 2-D ConvTranspose whose kernel equals its stride s (no padding, dilation 1, group 1: the 2×2, stride-2 upsampling
 * of DB text detectors' and U-Net decoders' heads) is the 1×1 Conv it computes followed by DepthToSpace: each input
 * pixel writes its own s×s output block, y[n, co, s·i + a, s·j + b] = Σ_ci x[n, ci, i, j] · W[ci, co, a, b] + bias[co],
 * which is a 1×1 Conv with s²·C_out output channels, channel (a·s + b)·C_out + co holding W[:, co, a, b] and bias[co],
 * rearranged by DepthToSpace (its default DCR order, the same in every opset). ONNX Runtime runs no ConvTranspose on
 * integers from Q/DQ on CPU (PP-OCRv4 det's two took 13% of its QDQ model's time in float); the 1×1 Conv is a
 * quantizable node like any other (per-channel weights then have one scale per (co, a, b), finer than per co), and
 * DepthToSpace moves codes. A Relu that is the only reader of the ConvTranspose's output moves before the
 * DepthToSpace (an element-wise op commutes with it), so the Conv's output quantization can take it.
 *
 * <p>The Conv keeps the ConvTranspose's name. The same function up to float summation order (tested in ONNX Runtime).
 */
public final class ConvTransposeAsDepthToSpace {

    private ConvTransposeAsDepthToSpace() {}

    /**
     * One rewrite.
     *
     * @param node     the ConvTranspose, now a 1×1 Conv of the same name
     * @param block    s
     * @param channels C_out of the ConvTranspose (the Conv has s²·C_out)
     */
    public record Rewrite(String node, int block, int channels) {}

    public record Result(OnnxModel model, List<Rewrite> rewritten) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<Rewrite> done = new ArrayList<>();
        List<String> maybeUnused = new ArrayList<>();
        for (NodeProto ct : m.nodes()) {
            int s = block(m, ct);
            if (s < 2) continue;
            String w = ct.getInput(1), bias = Nodes.input(ct, 2);
            long[] ws = m.shape(w);
            int cin = (int) ws[0], cout = (int) ws[1];
            float[] wv = m.initializerFloats(w);
            float[] bv = bias == null ? null : m.initializerFloats(bias);
            if (bv != null && bv.length != cout) continue;
            int outC = cout * s * s;
            float[] w2 = new float[outC * cin];
            float[] b2 = bv == null ? null : new float[outC];
            for (int ci = 0; ci < cin; ci++) {
                for (int co = 0; co < cout; co++) {
                    for (int a = 0; a < s; a++) {
                        for (int b = 0; b < s; b++) {
                            int oc = (a * s + b) * cout + co;
                            w2[oc * cin + ci] = wv[((ci * cout + co) * s + a) * s + b];
                            if (b2 != null) b2[oc] = bv[co];
                        }
                    }
                }
            }
            if (e == null) e = new GraphEditor(m.graph());
            String wName = e.uniqueName(w + "_as_conv");
            e.putInitializer(Graphs.floatTensor(wName, w2, outC, cin, 1, 1));
            List<String> in = new ArrayList<>(List.of(ct.getInput(0), wName));
            if (b2 != null) {
                String bName = e.uniqueName((bias) + "_as_conv");
                e.putInitializer(Graphs.floatTensor(bName, b2, outC));
                in.add(bName);
                maybeUnused.add(bias);
            }
            maybeUnused.add(w);
            String y = ct.getOutput(0);
            String blocks = e.uniqueName(y + "_blocks");
            int at = e.position(ct.getName());
            e.replace(at, Graphs.node("Conv", ct.getName(), in, List.of(blocks), Map.of("kernel_shape", new long[] {1, 1},
                    "strides", new long[] {1, 1}, "pads", new long[] {0, 0, 0, 0}, "dilations", new long[] {1, 1},
                    "group", 1L)));
            List<NodeProto> readers = m.consumers(y);
            NodeProto relu = readers.size() == 1 && !m.isGraphOutput(y) && readers.get(0).getOpType().equals("Relu")
                    && Nodes.defaultDomain(readers.get(0).getDomain()) ? readers.get(0) : null;
            String d2sIn = blocks, d2sOut = y;
            if (relu != null) {
                String activated = e.uniqueName(blocks + "_relu");
                e.remove(e.position(relu.getName()));
                e.insertAfter(at, Graphs.node("Relu", relu.getName(), List.of(blocks), List.of(activated)));
                d2sIn = activated;
                d2sOut = relu.getOutput(0);
            }
            e.insertAfter(at, Graphs.node("DepthToSpace", e.uniqueName(ct.getName() + "_depth_to_space"), List.of(d2sIn),
                    List.of(d2sOut), Map.of("blocksize", (long) s)));
            done.add(new Rewrite(ct.getName(), s, cout));
        }
        if (e == null) return new Result(m, done);
        e.dropUnused(maybeUnused);
        return new Result(m.withGraph(e.build()), done);
    }

    /** s when {@code n} is a ConvTranspose this rewrite takes (see the class comment), else 0. */
    static int block(OnnxModel m, NodeProto n) {
        if (!n.getOpType().equals("ConvTranspose") || !Nodes.defaultDomain(n.getDomain()) || n.getOutputCount() != 1
                || n.getInputCount() < 2) {
            return 0;
        }
        String w = n.getInput(1), b = Nodes.input(n, 2);
        if (!m.isInitializer(w) || m.initializer(w).getDataType() != TensorProto.DataType.FLOAT_VALUE
                || m.initializer(w).getDimsCount() != 4) {
            return 0;
        }
        if (b != null && (!m.isInitializer(b) || m.initializer(b).getDataType() != TensorProto.DataType.FLOAT_VALUE)) {
            return 0;
        }
        long[] ws = m.shape(w);
        if (Nodes.intAttr(n, "group", 1) != 1 || Nodes.has(n, "output_shape")) return 0;
        if (Nodes.has(n, "auto_pad") && !Nodes.stringAttr(n, "auto_pad", "NOTSET").equals("NOTSET")) return 0;
        long[] k = Nodes.has(n, "kernel_shape") ? Nodes.intsAttr(n, "kernel_shape") : new long[] {ws[2], ws[3]};
        long[] st = Nodes.has(n, "strides") ? Nodes.intsAttr(n, "strides") : new long[] {1, 1};
        if (k.length != 2 || st.length != 2 || k[0] != ws[2] || k[1] != ws[3] || k[0] != k[1] || st[0] != k[0]
                || st[1] != k[1]) {
            return 0;
        }
        for (String zeros : List.of("pads", "output_padding")) {
            if (Nodes.has(n, zeros)) for (long v : Nodes.intsAttr(n, zeros)) if (v != 0) return 0;
        }
        if (Nodes.has(n, "dilations")) for (long v : Nodes.intsAttr(n, "dilations")) if (v != 1) return 0;
        return (int) k[0];
    }
}
