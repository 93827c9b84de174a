package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * Folds inference-mode BatchNormalization into the Conv (or group-1 ConvTranspose) that feeds it, so that
 * quantization sees the weights the deployed (fused) layer really uses. With k_c = γ_c / √(var_c + ε):
 * W'_c = W_c · k_c and b'_c = (b_c − mean_c) · k_c + β_c (Jacob et al. 2018, §3.2; b = 0 without bias), W_c being
 * the weights of output channel c: axis 0 of a Conv weight, axis 1 of a ConvTranspose weight [C_in, C_out, k...].
 *
 * <p>A BN is folded only when its input is the output of a Conv that nothing else reads (and that is
 * not a graph output), its parameters are constants, and it runs in inference mode with a single
 * output. Any other BN is left in place. The folded Conv takes over the BN's output tensor name, so
 * readers and graph outputs need no rewiring; the BN's parameters are removed when nothing else reads
 * them. A shared Conv weight or bias gets a folded copy instead of being changed in place.
 *
 * <p>With {@code standaloneAsConv}, a BN that no Conv absorbs (DenseNet's pre-activation BN after each Concat,
 * a BN on a graph input or after a pooling) becomes the Conv it computes: a depthwise 1×1 Conv ({@code group} = C,
 * weight [C, 1, 1...] = k_c, bias β_c − mean_c · k_c) named after the BN and writing its output tensor. It is then a
 * quantizable node like any other: with per-channel weights each channel's single factor k_c is exact on the grid
 * (it is the channel's largest magnitude), so quantization adds nothing but its int32 bias; ONNX Runtime runs it
 * as a QLinearConv in its channels-last integer chain, where a float BN between a DequantizeLinear and a
 * QuantizeLinear cost DenseNet-121 (62 such BNs) about 40% of its QDQ model's time in BN, Q/DQ and layout
 * Transposes. ONNX Runtime does the same for FP32 (it runs a lone BN as an NCHWc Conv). The BN must run in
 * inference mode with constant parameters and a 3-, 4- or 5-dimensional input (its rank from the model's
 * declarations or a Conv it feeds through rank-preserving operators); any other is kept with its reason.
 */
public final class BatchNormFolder {

    private BatchNormFolder() {}

    public static BatchNormFolding fold(OnnxModel model) {
        return fold(model, false);
    }

    public static BatchNormFolding fold(OnnxModel model, boolean standaloneAsConv) {
        GraphEditor edit = new GraphEditor(model.graph());
        List<FoldedBatchNorm> folded = new ArrayList<>();
        List<String> maybeUnused = new ArrayList<>();
        for (NodeProto bn : model.nodes()) {
            if (!bn.getOpType().equals("BatchNormalization") || !Nodes.defaultDomain(bn.getDomain())) continue;
            NodeProto conv = foldableConv(model, bn);
            if (conv == null) continue;
            String where = model.source() + ": " + Nodes.describe(bn);
            // Conv weight [C_out, C_in/g, k...]; ConvTranspose (group 1) [C_in, C_out, k...]: the output channel's axis
            int c = (int) model.shape(conv.getInput(1))[OpKind.of(conv.getOpType()).batchNormAxis(conv)];
            float[][] p = new float[4][];
            for (int i = 0; i < 4; i++) {
                p[i] = model.constantFloats(bn.getInput(i + 1));
                if (p[i].length != c) {
                    throw new ModelException(where + ": parameter " + bn.getInput(i + 1) + " has " + p[i].length
                            + " values, expected " + c + " (the output channels of " + conv.getName() + ")");
                }
            }
            float[] gamma = p[0], beta = p[1], mean = p[2], var = p[3];
            double eps = Nodes.floatAttr(bn, "epsilon", 1e-5);
            float[] bias = bias(model, conv, c);
            double[] k = new double[c];
            float[] b2 = new float[c];
            for (int ch = 0; ch < c; ch++) {
                k[ch] = gamma[ch] / Math.sqrt((double) var[ch] + eps);
                b2[ch] = (float) ((bias[ch] - (double) mean[ch]) * k[ch] + beta[ch]);
            }
            scaleChannels(model, edit, conv, k, b2, bn.getOutput(0), "_folded", "_bias", maybeUnused);
            edit.remove(edit.position(bn.getName()));
            for (int i = 1; i <= 4; i++) maybeUnused.add(bn.getInput(i));
            folded.add(new FoldedBatchNorm(conv.getName(), bn.getName(), gamma, beta, mean, var, eps));
        }
        List<FoldedBatchNorm> asConv = new ArrayList<>();
        java.util.Map<String, String> kept = new java.util.LinkedHashMap<>();
        java.util.Set<String> foldedNames = new java.util.HashSet<>();
        for (FoldedBatchNorm f : folded) foldedNames.add(f.batchNorm());
        java.util.function.Function<String, Integer> ranks = null;
        for (NodeProto bn : model.nodes()) {
            if (!bn.getOpType().equals("BatchNormalization") || !Nodes.defaultDomain(bn.getDomain())
                    || foldedNames.contains(bn.getName())) {
                continue;
            }
            if (!standaloneAsConv) {
                kept.put(bn.getName(), "no Conv before it to fold into");
                continue;
            }
            if (ranks == null) ranks = RankHints.ranks(model);
            float[][] p = new float[4][];
            for (int i = 0; i < 4 && i + 1 < bn.getInputCount(); i++) p[i] = model.constantFloats(bn.getInput(i + 1));
            String why = standaloneReason(bn, p, ranks);
            if (why != null) {
                kept.put(bn.getName(), why);
                continue;
            }
            int rank = ranks.apply(bn.getInput(0));
            float[] gamma = p[0], beta = p[1], mean = p[2], var = p[3];
            int c = gamma.length;
            double eps = Nodes.floatAttr(bn, "epsilon", 1e-5);
            float[] w = new float[c];
            float[] b = new float[c];
            for (int ch = 0; ch < c; ch++) {
                double k = gamma[ch] / Math.sqrt((double) var[ch] + eps);
                w[ch] = (float) k;
                b[ch] = (float) (beta[ch] - mean[ch] * k);
            }
            long[] wShape = new long[rank];
            java.util.Arrays.fill(wShape, 1);
            wShape[0] = c;
            long[] ones = new long[rank - 2];
            java.util.Arrays.fill(ones, 1);
            String wName = edit.uniqueName(bn.getName() + ".conv_weight");
            String bName = edit.uniqueName(bn.getName() + ".conv_bias");
            edit.putInitializer(Graphs.floatTensor(wName, w, wShape));
            edit.putInitializer(Graphs.floatTensor(bName, b, c));
            NodeProto conv = Graphs.node("Conv", bn.getName(), List.of(bn.getInput(0), wName, bName),
                    List.of(bn.getOutput(0)), java.util.Map.of("group", (long) c, "kernel_shape", ones));
            edit.replace(edit.position(bn.getName()), conv);
            for (int i = 1; i <= 4; i++) maybeUnused.add(bn.getInput(i));
            asConv.add(new FoldedBatchNorm(bn.getName(), bn.getName(), gamma, beta, mean, var, eps));
        }
        if (folded.isEmpty() && asConv.isEmpty()) return new BatchNormFolding(model, folded, asConv, kept);
        edit.dropUnused(maybeUnused);
        return new BatchNormFolding(model.withGraph(edit.build()), folded, asConv, kept);
    }

    /**
     * Why the stand-alone {@code bn} cannot become a depthwise Conv, or null when it can; {@code params} holds its γ, β,
     * mean and var, null where not constant.
     */
    private static String standaloneReason(NodeProto bn, float[][] params,
                                           java.util.function.Function<String, Integer> ranks) {
        if (bn.getInputCount() < 5) return "fewer than 5 inputs";
        if (Nodes.intAttr(bn, "training_mode", 0) != 0) return "training mode";
        if (Nodes.has(bn, "spatial") && Nodes.intAttr(bn, "spatial", 1) == 0) return "spatial = 0 (statistics per element)";
        for (int i = 1; i < bn.getOutputCount(); i++) {
            if (!bn.getOutput(i).isEmpty()) return "training-mode outputs in use";
        }
        int c = -1;
        for (int i = 1; i <= 4; i++) {
            float[] v = params[i - 1];
            if (v == null) return "parameter " + bn.getInput(i) + " is computed at run time";
            if (c >= 0 && v.length != c) return "parameters of different lengths";
            c = v.length;
        }
        Integer r = ranks.apply(bn.getInput(0));
        if (r == null) return "input rank unknown";
        if (r < 3 || r > 5) return "input rank " + r + " (a Conv takes 3 to 5)";
        return null;
    }

    /** Whether {@code conv}'s weight (rank ≥ 3) and bias, if any, are float initializers that a fold can rewrite. */
    static boolean foldableWeights(OnnxModel m, NodeProto conv) {
        String w = Nodes.input(conv, 1), b = Nodes.input(conv, 2);
        if (w == null || !m.isInitializer(w) || m.initializer(w).getDataType() != TensorProto.DataType.FLOAT_VALUE
                || m.initializer(w).getDimsCount() < 3) {
            return false;
        }
        return b == null || m.isInitializer(b) && m.initializer(b).getDataType() == TensorProto.DataType.FLOAT_VALUE;
    }

    /** The bias of {@code conv} ({@code c} zeros without one), checked to have {@code c} values. */
    static float[] bias(OnnxModel m, NodeProto conv, int c) {
        String b = Nodes.input(conv, 2);
        float[] bias = b == null ? new float[c] : m.initializerFloats(b);
        if (bias.length != c) {
            throw new ModelException(m.source() + ": " + Nodes.describe(conv) + ": bias " + b + " has " + bias.length
                    + " values, expected " + c);
        }
        return bias;
    }

    /**
     * Rewrites {@code conv} (a Conv, or a group-1 ConvTranspose: output channels on weight axis 1) with each output
     * channel's weights times {@code k[c]} and the bias {@code newBias}, writing {@code output}. A weight or bias that
     * another node reads keeps its values for that node: the rewritten one is then a copy named with {@code
     * weightSuffix} / {@code biasSuffix} after the weight's name. The old weight and bias go to {@code maybeUnused}.
     */
    static void scaleChannels(OnnxModel m, GraphEditor edit, NodeProto conv, double[] k, float[] newBias, String output,
                              String weightSuffix, String biasSuffix, List<String> maybeUnused) {
        String w = conv.getInput(1), b = Nodes.input(conv, 2);
        long[] wShape = m.shape(w);
        boolean transposed = OpKind.of(conv.getOpType()).batchNormAxis(conv) == 1;
        int c = k.length;
        float[] weight = m.initializerFloats(w);
        float[] w2 = new float[weight.length];
        int inner = weight.length / c;
        int taps = transposed ? (int) (weight.length / (wShape[0] * wShape[1])) : inner;
        for (int ch = 0; ch < c; ch++) {
            if (transposed) {
                for (int ci = 0; ci < wShape[0]; ci++) {
                    int from = (ci * c + ch) * taps;
                    for (int i = from; i < from + taps; i++) w2[i] = (float) (weight[i] * k[ch]);
                }
            } else {
                for (int i = ch * inner; i < (ch + 1) * inner; i++) w2[i] = (float) (weight[i] * k[ch]);
            }
        }
        String w2Name = m.consumers(w).size() == 1 ? w : edit.uniqueName(w + weightSuffix);
        String b2Name = b != null && m.consumers(b).size() == 1 ? b : edit.uniqueName(w + biasSuffix);
        edit.putInitializer(Graphs.floatTensor(w2Name, w2, wShape));
        edit.putInitializer(Graphs.floatTensor(b2Name, newBias, c));
        edit.replace(edit.position(conv.getName()), conv.toBuilder().clearInput().addInput(conv.getInput(0))
                .addInput(w2Name).addInput(b2Name).setOutput(0, output).build());
        maybeUnused.add(w);
        if (b != null) maybeUnused.add(b);
    }

    /** The Conv {@code bn} can be folded into, or null when any condition of the class comment fails. */
    private static NodeProto foldableConv(OnnxModel m, NodeProto bn) {
        if (bn.getInputCount() < 5 || Nodes.intAttr(bn, "training_mode", 0) != 0) return null;
        for (int i = 1; i < bn.getOutputCount(); i++) {
            if (!bn.getOutput(i).isEmpty()) return null; // training-mode outputs (running mean, var) in use
        }
        String x = bn.getInput(0);
        NodeProto conv = m.producer(x);
        if (conv == null || !Nodes.defaultDomain(conv.getDomain())) return null;
        OpKind kind = OpKind.of(conv.getOpType());
        if (kind == null || kind.batchNormAxis(conv) < 0) return null;
        if (m.consumers(x).size() != 1 || m.isGraphOutput(x) || !foldableWeights(m, conv)) return null;
        for (int i = 1; i <= 4; i++) {
            if (m.constantFloats(bn.getInput(i)) == null) return null;
        }
        return conv;
    }
}
