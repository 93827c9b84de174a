package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;

/**
 * The front end's spatial-mean rule: a ReduceMean over the two spatial axes of an NCHW tensor (torch's
 * {@code x.mean([2, 3])}, which torchvision's MNASNet and timm's squeeze-excitation blocks write instead of an adaptive
 * average pool) becomes the GlobalAveragePool it computes, followed by a Flatten when the ReduceMean drops the
 * reduced axes ({@code keepdims = 0}: [N, C, 1, 1] → [N, C]). The op is then a pooling op like any other: the {@code
 * ort} profile quantizes it (ONNX Runtime runs QLinearGlobalAveragePool on the codes, where a ReduceMean ran in
 * float behind a DequantizeLinear of the whole feature map) and the Flatten passes its parameters on.
 *
 * <p>The same mean: both divide the sum over H·W by H·W (float summation order aside; tested in ONNX Runtime). Only
 * where that is certain: axes {2, 3} (or {−2, −1}) as an attribute or a constant input (opset 18), of a tensor whose
 * rank is 4 by the model's declarations or a Conv it is tied to ({@link RankHints#ranks}); every other ReduceMean is
 * left as it is.
 */
public final class SpatialMeanAsPool {

    private SpatialMeanAsPool() {}

    /** The rewritten model and the ReduceMean nodes rewritten, in graph order. */
    public record Result(OnnxModel model, List<String> rewritten) {}

    public static Result rewrite(OnnxModel m) {
        java.util.function.Function<String, Integer> ranks = null;
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("ReduceMean") || !Nodes.defaultDomain(n.getDomain()) || n.getInputCount() < 1
                    || n.getOutputCount() != 1) {
                continue;
            }
            long[] axes = axes(m, n);
            if (axes == null || axes.length != 2) continue;
            if (ranks == null) ranks = RankHints.ranks(m);
            Integer rank = ranks.apply(n.getInput(0));
            if (rank == null || rank != 4) continue;
            long a0 = Math.floorMod(axes[0], 4), a1 = Math.floorMod(axes[1], 4);
            if (!(a0 == 2 && a1 == 3 || a0 == 3 && a1 == 2)) continue;
            if (e == null) e = new GraphEditor(m.graph());
            int at = e.position(n.getName());
            String y = n.getOutput(0);
            if (Nodes.intAttr(n, "keepdims", 1) != 0) {
                e.replace(at, Graphs.node("GlobalAveragePool", n.getName(), List.of(n.getInput(0)), List.of(y)));
            } else {
                String pooled = e.uniqueName(y + "_pooled");
                e.replace(at, Graphs.node("GlobalAveragePool", n.getName(), List.of(n.getInput(0)), List.of(pooled)));
                e.insertAfter(at, Graphs.node("Flatten", e.uniqueName(n.getName() + "_flatten"), List.of(pooled),
                        List.of(y), Map.of("axis", 1L)));
            }
            done.add(n.getName());
        }
        return new Result(e == null ? m : m.withGraph(e.build()), done);
    }

    /** The axes of a ReduceMean: its attribute (opset &lt; 18) or its constant second input; null when not constant. */
    private static long[] axes(OnnxModel m, NodeProto n) {
        if (Nodes.has(n, "axes")) return Nodes.intsAttr(n, "axes");
        String a = Nodes.input(n, 1);
        if (a == null || !m.isInitializer(a)) return null;
        int[] v = m.initializerInts(a);
        long[] l = new long[v.length];
        for (int i = 0; i < v.length; i++) l[i] = v[i];
        return l;
    }
}
