package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * Folds a chain of Mul and Add by constants that follows a Conv (or group-1 ConvTranspose) into that Conv's weight
 * and bias: y = k·Conv(x) + a, per output channel, is Conv(x) with W'_c = W_c·k_c and b'_c = b_c·k_c + a_c — a
 * BatchNormalization written out, as PaddlePaddle's PP-LCNet writes its "learnable affine blocks" (a scalar scale
 * and shift after each Conv, 28 of them in PP-OCRv4 det). Each such op otherwise runs in float between a
 * DequantizeLinear and a QuantizeLinear; folded, the Conv is quantized with the weights it really applies, as for BN
 * folding.
 *
 * <p>A constant qualifies when it broadcasts along the output channel only: one value, or C values on the channel
 * axis of a shape [.., C, 1, ..] aligned with the Conv output's axis 1. The chain is followed while each tensor has
 * that one reader and is no graph output (Conv → Mul → Add → Mul ...); Div by a constant is left alone (its
 * reciprocal is not exact). The same function up to float rounding of the products.
 */
public final class AffineFolder {

    private AffineFolder() {}

    /**
     * One Conv's folded chain: {@code y = scale·Conv(x) + shift} per output channel.
     *
     * @param conv  the Conv, which now writes the chain's last output
     * @param ops   the folded Mul/Add nodes, in order
     * @param scale k_c (C values)
     * @param shift a_c (C values)
     */
    public record Fold(String conv, List<String> ops, float[] scale, float[] shift) {}

    public record Result(OnnxModel model, List<Fold> folds) {}

    public static Result fold(OnnxModel m) {
        GraphEditor edit = null;
        List<Fold> folds = new ArrayList<>();
        List<String> maybeUnused = new ArrayList<>();
        for (NodeProto conv : m.nodes()) {
            if (!Nodes.defaultDomain(conv.getDomain())) continue;
            OpKind kind = OpKind.of(conv.getOpType());
            if (kind == null || kind.batchNormAxis(conv) < 0 || conv.getOutputCount() != 1) continue;
            if (!BatchNormFolder.foldableWeights(m, conv)) continue;
            long[] wShape = m.shape(conv.getInput(1));
            int c = (int) wShape[kind.batchNormAxis(conv)];
            int outRank = wShape.length;
            double[] k = new double[c], a = new double[c];
            Arrays.fill(k, 1);
            List<NodeProto> chain = new ArrayList<>();
            String y = conv.getOutput(0);
            while (true) {
                List<NodeProto> rs = m.consumers(y);
                if (rs.size() != 1 || m.isGraphOutput(y)) break;
                NodeProto op = rs.get(0);
                boolean mul = op.getOpType().equals("Mul");
                if (!mul && !op.getOpType().equals("Add") || !Nodes.defaultDomain(op.getDomain())
                        || op.getInputCount() != 2 || op.getOutputCount() != 1) {
                    break;
                }
                String other = op.getInput(0).equals(y) ? op.getInput(1) : op.getInput(1).equals(y) ? op.getInput(0) : null;
                float[] v = other == null || other.equals(y) ? null : perChannel(m, other, c, outRank);
                if (v == null) break;
                for (int ch = 0; ch < c; ch++) {
                    double f = v[v.length == 1 ? 0 : ch];
                    if (mul) {
                        k[ch] *= f;
                        a[ch] *= f;
                    } else {
                        a[ch] += f;
                    }
                }
                chain.add(op);
                y = op.getOutput(0);
            }
            if (chain.isEmpty()) continue;
            if (edit == null) edit = new GraphEditor(m.graph());
            float[] bias = BatchNormFolder.bias(m, conv, c);
            float[] b2 = new float[c];
            for (int ch = 0; ch < c; ch++) b2[ch] = (float) (bias[ch] * k[ch] + a[ch]);
            BatchNormFolder.scaleChannels(m, edit, conv, k, b2, y, "_affine", "_affine_bias", maybeUnused);
            List<String> names = new ArrayList<>();
            for (NodeProto op : chain) {
                edit.remove(edit.position(op.getName()));
                maybeUnused.addAll(op.getInputList());
                names.add(op.getName());
            }
            float[] kf = new float[c], af = new float[c];
            for (int ch = 0; ch < c; ch++) {
                kf[ch] = (float) k[ch];
                af[ch] = (float) a[ch];
            }
            folds.add(new Fold(conv.getName(), names, kf, af));
        }
        if (edit == null) return new Result(m, folds);
        edit.dropUnused(maybeUnused);
        return new Result(m.withGraph(edit.build()), folds);
    }

    /**
     * The values of constant {@code t} when it broadcasts along a rank-{@code outRank} output's channel axis only:
     * one value, or {@code c} values on the axis aligned with axis 1; else null.
     */
    static float[] perChannel(OnnxModel m, String t, int c, int outRank) {
        if (m.isInitializer(t) && m.initializer(t).getDataType() != TensorProto.DataType.FLOAT_VALUE) return null;
        float[] v = m.constantFloats(t);
        if (v == null) return null;
        if (v.length == 1) {
            // a one-value constant of higher rank than the output would raise the output's rank
            return constantRank(m, t) <= outRank ? v : null;
        }
        if (v.length != c) return null;
        long[] s = constantShape(m, t);
        if (s == null || s.length > outRank || s.length < outRank - 1) return null;
        int channelAxis = s.length - (outRank - 1);
        for (int i = 0; i < s.length; i++) {
            if (s[i] != (i == channelAxis ? c : 1)) return null;
        }
        return v;
    }

    private static int constantRank(OnnxModel m, String t) {
        long[] s = constantShape(m, t);
        return s == null ? Integer.MAX_VALUE : s.length;
    }

    private static long[] constantShape(OnnxModel m, String t) {
        if (m.isInitializer(t)) return m.shape(t);
        NodeProto p = m.producer(t);
        if (p == null) return null;
        for (var a : p.getAttributeList()) {
            if (a.getName().equals("value")) return a.getT().getDimsList().stream().mapToLong(Long::longValue).toArray();
            if (a.getName().equals("value_float")) return new long[0];
        }
        return null;
    }
}
