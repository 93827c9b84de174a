package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The front end's rule for a MatMul whose constant is its first operand, y = W · x (W [M, K] a float initializer, x
 * [..., K, N] an activation: a learned mixing over positions or nodes, a mel filterbank on a spectrogram, a graph's
 * adjacency on node features): it becomes y = (xᵀ · Wᵀ)ᵀ, a Transpose of x's last two axes, the MatMul x-times-weight
 * quantcal quantizes (the node keeps its name; its weight is Wᵀ [K, M], per channel along M, W's rows), and a Transpose
 * back that writes y. ONNX Runtime's quantizer quantizes both inputs of such a MatMul; before, quantcal left it FP32 with
 * that reason. The same products, summed in another order by the GEMM (tested in ONNX Runtime); shape-only Transposes
 * pass their input's quantization through in the {@code ort} profile.
 *
 * <p>Only where the rank of x is known (2 or more: {@link RankHints#ranksThroughProducers}) and W is a 2-D float
 * initializer; any other MatMul is left as it is (coverage says why).
 */
public final class ConstantFirstMatMul {

    private ConstantFirstMatMul() {}

    /** The rewritten model and the MatMul nodes rewritten, in graph order. */
    public record Result(OnnxModel model, List<String> rewritten) {}

    public static Result rewrite(OnnxModel m) {
        java.util.function.Function<String, Integer> ranks = null;
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        List<String> maybeUnused = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("MatMul") || !Nodes.defaultDomain(n.getDomain()) || n.getInputCount() != 2) continue;
            String w = n.getInput(0), x = n.getInput(1);
            if (!m.isInitializer(w) || m.isInitializer(x) || m.excluded().contains(n.getName())) continue;
            TensorProto wt = m.initializer(w);
            if (wt.getDataType() != TensorProto.DataType.FLOAT_VALUE || wt.getDimsCount() != 2) continue;
            if (ranks == null) ranks = RankHints.ranksThroughProducers(m);
            Integer rank = ranks.apply(x);
            if (rank == null || rank < 2) continue;
            if (e == null) e = new GraphEditor(m.graph());
            int rows = (int) wt.getDims(0), cols = (int) wt.getDims(1);
            float[] v = m.initializerFloats(w), t = new float[v.length];
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = v[i * cols + j];
            String wT = e.uniqueName(w + "_transposed");
            e.putInitializer(Graphs.floatTensor(wT, t, cols, rows));
            long[] perm = new long[rank];
            for (int a = 0; a < rank; a++) perm[a] = a;
            perm[rank - 2] = rank - 1;
            perm[rank - 1] = rank - 2;
            String xT = e.uniqueName(x + "_transposed"), yT = e.uniqueName(n.getOutput(0) + "_transposed");
            int at = e.position(n.getName());
            e.replace(at, Graphs.node("MatMul", n.getName(), List.of(xT, wT), List.of(yT)));
            e.insertBefore(at, Graphs.node("Transpose", e.uniqueName(n.getName() + "_input_transposed"), List.of(x),
                    List.of(xT), Map.of("perm", perm)));
            e.insertAfter(e.position(n.getName()), Graphs.node("Transpose", e.uniqueName(n.getName() + "_output_transposed"),
                    List.of(yT), List.of(n.getOutput(0)), Map.of("perm", perm)));
            maybeUnused.add(w);
            done.add(n.getName());
        }
        if (e == null) return new Result(m, done);
        e.dropUnused(maybeUnused);
        return new Result(m.withGraph(e.build()), done);
    }
}
