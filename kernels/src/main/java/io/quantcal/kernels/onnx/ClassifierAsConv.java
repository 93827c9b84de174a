package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The {@code ort} export's classifier rule: a Gemm or MatMul that reads a globally pooled feature map through a
 * Flatten or a Reshape to [N, C], and whose output is quantized, is written as the 1×1 Conv it computes on the pooled
 * [N, C, 1, 1] tensor, its quantized output flattened after the QuantizeLinear (on the codes).
 *
 * <p>Why: ONNX Runtime runs the quantized network channels-last (NHWC) and moves the Transpose back to NCHW that
 * follows the last QLinearConv past elementwise integer ops (QLinearAdd, QLinearMul, ...) only when a later QLinearConv
 * cancels it. Without one, every op after the last convolution runs channels-first behind a Transpose of the whole
 * feature map: PaddleOCR's direction classifier (hard-swish, 2×2 MaxPool, global pool, MatMul) transposed a [32, 2, 96,
 * 200] tensor and ran ONNX Runtime's uint8 MaxPool in NCHW at 6× the float one's time. As a QLinearConv the classifier
 * cancels the Transpose, which ends up on the pooled [N, C, 1, 1] tensor (0.85× → 0.98× FP32, interleaved).
 *
 * <p>The same numbers: the classifier's output channel o is Σ_c w[o, c]·x[c] (+ b[o]) either way, with the same
 * integer codes, scales and int32 bias; the Flatten of [N, C, 1, 1] (or [N, C, 1]) to [N, C] moves no value. The
 * table's rows keep their tensors: the Flatten's (or Reshape's) output is still quantized by its QuantizeLinear, as an
 * Identity of the pooled tensor (so shaped [N, C, 1, 1]), and the classifier's output by its QuantizeLinear.
 *
 * <p>Only where certain: the pooled tensor is a GlobalAveragePool's or GlobalMaxPool's output of known rank 3 or 4, read
 * through a DequantizeLinear; a Flatten with axis 1, or a Reshape whose target provably has 2 elements (a constant, or a
 * Concat of constants and slices of a Shape: paddle2onnx computes [N, C] from the pooled tensor's Shape); with two
 * dimensions and C·1·1 values per sample the target can only be [N, C], as the classifier's weight needs. Gemm:
 * alpha 1, beta 1, transA 0, its bias absent or a DequantizeLinear of an int32 vector; MatMul: a 2-D weight. The
 * weight is integer codes behind a DequantizeLinear; every intermediate tensor has its one reader; the classifier's
 * output is read only by a QuantizeLinear (a classifier that writes a graph output in float, the usual last layer, is
 * left as it is: ONNX Runtime then runs no QLinearConv for it).
 */
final class ClassifierAsConv {

    private ClassifierAsConv() {}

    /** {@code qdq} with each classifier the rule applies to written as a 1×1 Conv; the same model when none. */
    static OnnxModel rewrite(OnnxModel qdq) {
        Function<String, Integer> ranks = null;
        GraphEditor e = null;
        Set<String> dead = new HashSet<>();
        for (NodeProto fc : qdq.nodes()) {
            boolean gemm = fc.getOpType().equals("Gemm");
            if (!gemm && !fc.getOpType().equals("MatMul") || !Nodes.defaultDomain(fc.getDomain())) continue;
            if (gemm && (Nodes.floatAttr(fc, "alpha", 1) != 1 || Nodes.floatAttr(fc, "beta", 1) != 1
                    || Nodes.intAttr(fc, "transA", 0) != 0)) continue;
            // the input: DequantizeLinear ← QuantizeLinear ← Flatten/Reshape ← DequantizeLinear of a pooled tensor
            NodeProto aDq = Nodes.soleProducer(qdq, fc.getInput(0), "DequantizeLinear", fc);
            NodeProto aQ = aDq == null ? null : Nodes.soleProducer(qdq, aDq.getInput(0), "QuantizeLinear", aDq);
            NodeProto reshape = aQ == null ? null : qdq.producer(aQ.getInput(0));
            if (reshape == null || qdq.consumers(aQ.getInput(0)).size() != 1 || qdq.isGraphOutput(aQ.getInput(0))) continue;
            String flat = reshape.getOpType();
            if (flat.equals("Flatten")) {
                if (Nodes.intAttr(reshape, "axis", 1) != 1) continue;
            } else {
                if (!flat.equals("Reshape") || reshape.getInputCount() < 2) continue;
                if (ranks == null) ranks = RankHints.ranksThroughProducers(qdq);
                if (length(qdq, reshape.getInput(1), ranks) != 2) continue;
            }
            NodeProto pDq = qdq.producer(reshape.getInput(0));
            if (pDq == null || !pDq.getOpType().equals("DequantizeLinear")) continue;
            NodeProto pQ = qdq.producer(pDq.getInput(0));
            NodeProto pool = pQ == null || !pQ.getOpType().equals("QuantizeLinear") ? null : qdq.producer(pQ.getInput(0));
            if (pool == null || !Set.of("GlobalAveragePool", "GlobalMaxPool").contains(pool.getOpType())) continue;
            if (ranks == null) ranks = RankHints.ranksThroughProducers(qdq);
            Integer rank = ranks.apply(pool.getInput(0));
            if (rank == null || rank < 3 || rank > 4) continue;
            // the weight: integer codes behind a DequantizeLinear, [out, C] (Gemm transB) or [C, out]
            NodeProto wDq = Nodes.soleProducer(qdq, fc.getInput(1), "DequantizeLinear", fc);
            if (wDq == null || !qdq.isInitializer(wDq.getInput(0)) || !qdq.isInitializer(wDq.getInput(1))) continue;
            TensorProto codes = qdq.initializer(wDq.getInput(0));
            int type = codes.getDataType();
            if (codes.getDimsCount() != 2 || type != TensorProto.DataType.INT8_VALUE && type != TensorProto.DataType.UINT8_VALUE) continue;
            boolean outFirst = gemm && Nodes.intAttr(fc, "transB", 0) == 1;
            int perChannelAxis = outFirst ? 0 : 1;
            boolean perChannel = qdq.initializer(wDq.getInput(1)).getDimsCount() == 1
                    && qdq.initializer(wDq.getInput(1)).getDims(0) > 1;
            if (perChannel && Math.floorMod(Nodes.intAttr(wDq, "axis", 1), 2) != perChannelAxis) continue;
            long out = codes.getDims(outFirst ? 0 : 1), c = codes.getDims(outFirst ? 1 : 0);
            // the bias: none, or int32 codes behind a DequantizeLinear
            String bias = gemm ? Nodes.input(fc, 2) : null;
            if (bias != null) {
                NodeProto bDq = Nodes.soleProducer(qdq, bias, "DequantizeLinear", fc);
                if (bDq == null || !qdq.isInitializer(bDq.getInput(0))) continue;
                TensorProto b = qdq.initializer(bDq.getInput(0));
                if (b.getDataType() != TensorProto.DataType.INT32_VALUE || b.getDimsCount() != 1 || b.getDims(0) != out) continue;
            }
            // the output: read by one QuantizeLinear only
            String y = fc.getOutput(0);
            List<NodeProto> readers = qdq.consumers(y);
            if (qdq.isGraphOutput(y) || readers.size() != 1 || !readers.get(0).getOpType().equals("QuantizeLinear")) continue;
            NodeProto yQ = readers.get(0);

            if (e == null) e = new GraphEditor(qdq.graph());
            // the Flatten/Reshape becomes an Identity of the pooled tensor: its output keeps its QuantizeLinear
            e.replace(e.position(reshape.getName()), Graphs.node("Identity", reshape.getName(),
                    List.of(reshape.getInput(0)), List.of(reshape.getOutput(0))));
            if (flat.equals("Reshape")) dead.add(reshape.getInput(1));
            // the weight as [out, C, 1, 1] (or [out, C, 1]) codes, per channel on axis 0
            int[] q = qdq.initializerInts(wDq.getInput(0));
            int[] t = new int[q.length];
            for (int o = 0; o < out; o++) {
                for (int k = 0; k < c; k++) t[(int) (o * c + k)] = outFirst ? q[(int) (o * c + k)] : q[(int) (k * out + o)];
            }
            long[] dims = rank == 4 ? new long[] {out, c, 1, 1} : new long[] {out, c, 1};
            String conv4 = e.uniqueName(wDq.getInput(0) + "_conv");
            e.putInitializer(Graphs.intTensor(conv4, TensorProto.DataType.forNumber(type), t, dims));
            String w4 = e.uniqueName(wDq.getOutput(0) + "_conv");
            List<String> wIn = new ArrayList<>(wDq.getInputList());
            wIn.set(0, conv4);
            int wAt = e.position(wDq.getName());
            e.replace(wAt, Graphs.node("DequantizeLinear", wDq.getName(), wIn, List.of(w4),
                    perChannel ? Map.of("axis", 0L) : Map.of()));
            List<String> in = new ArrayList<>(List.of(fc.getInput(0), w4));
            if (bias != null) in.add(bias);
            e.replace(e.position(fc.getName()), Graphs.node("Conv", fc.getName(), in, List.of(y),
                    Map.of("kernel_shape", rank == 4 ? new long[] {1, 1} : new long[] {1})));
            // the output's codes [N, out, 1, 1] flattened to the [N, out] its readers had
            String codes4 = e.uniqueName(yQ.getOutput(0) + "_4d");
            int qAt = e.position(yQ.getName());
            e.replace(qAt, yQ.toBuilder().setOutput(0, codes4).build());
            e.insertAfter(qAt, Graphs.node("Flatten", e.uniqueName(fc.getName() + "_flatten"), List.of(codes4),
                    List.of(yQ.getOutput(0)), Map.of("axis", 1L)));
            dead.add(wDq.getInput(0));
        }
        if (e == null) return qdq;
        e.dropDeadNodes(dead);
        return qdq.withGraph(e.build());
    }

    /**
     * The number of elements of a 1-D int64 shape tensor, where the graph says it: a constant, or Concat (axis 0),
     * Cast, Unsqueeze of a scalar, Gather of a 1-D or scalar constant index, Slice (constant starts, ends, axes 0,
     * steps 1) and Shape of a tensor whose rank {@code ranks} knows (no start/end); -1 when unknown.
     */
    static long length(OnnxModel m, String t, Function<String, Integer> ranks) {
        if (m.isInitializer(t)) {
            TensorProto p = m.initializer(t);
            return p.getDimsCount() == 1 ? p.getDims(0) : p.getDimsCount() == 0 ? 0 : -1;
        }
        NodeProto n = m.producer(t);
        if (n == null || !Nodes.defaultDomain(n.getDomain())) return -1;
        switch (n.getOpType()) {
            case "Constant": {
                var a = Nodes.attribute(n, "value");
                if (a == null || !a.hasT()) return -1;
                return a.getT().getDimsCount() == 1 ? a.getT().getDims(0) : a.getT().getDimsCount() == 0 ? 0 : -1;
            }
            case "Cast":
                return length(m, n.getInput(0), ranks);
            case "Concat": {
                if (Nodes.intAttr(n, "axis", 0) != 0) return -1;
                long sum = 0;
                for (String i : n.getInputList()) {
                    long l = length(m, i, ranks);
                    if (l <= 0) return -1;
                    sum += l;
                }
                return sum;
            }
            case "Unsqueeze":
                return length(m, n.getInput(0), ranks) == 0 ? 1 : -1;
            case "Gather": {
                String idx = Nodes.input(n, 1);
                if (idx == null || !m.isInitializer(idx)) return -1;
                TensorProto p = m.initializer(idx);
                return p.getDimsCount() == 0 ? 0 : p.getDimsCount() == 1 ? p.getDims(0) : -1;
            }
            case "Shape": {
                if (Nodes.has(n, "start") || Nodes.has(n, "end")) return -1;
                Integer r = ranks.apply(n.getInput(0));
                return r == null ? -1 : r;
            }
            case "Slice": {
                long whole = length(m, n.getInput(0), ranks);
                String s = Nodes.input(n, 1), en = Nodes.input(n, 2), ax = Nodes.input(n, 3), st = Nodes.input(n, 4);
                if (whole <= 0 || s == null || en == null || !m.isInitializer(s) || !m.isInitializer(en)) return -1;
                if (ax != null && (!m.isInitializer(ax) || m.initializerInts(ax).length != 1 || m.initializerInts(ax)[0] != 0)) return -1;
                if (st != null && (!m.isInitializer(st) || m.initializerInts(st).length != 1 || m.initializerInts(st)[0] != 1)) return -1;
                long[] se = Tensors.longs(m.initializer(s), "Slice starts " + s), ee = Tensors.longs(m.initializer(en), "Slice ends " + en);
                if (se.length != 1 || ee.length != 1) return -1;
                long from = clamp(se[0], whole), to = clamp(ee[0], whole);
                return Math.max(0, to - from);
            }
            default:
                return -1;
        }
    }

    private static long clamp(long i, long n) {
        long v = i < 0 ? i + n : i;
        return Math.max(0, Math.min(n, v));
    }
}
