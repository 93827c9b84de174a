package io.quantcal.kernels.onnx;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto.DataType;
import onnx.Onnx.ValueInfoProto;

/**
 * Writes a QDQ model in the ONNX Runtime convention (FORMATS.md): quantcal's parameters become
 * QuantizeLinear/DequantizeLinear nodes around the FP32 graph, so that ONNX Runtime, TensorRT and other
 * QDQ consumers run the model with exactly the quantization quantcal measured.
 *
 * <ul>
 *   <li><b>Weights</b> of each quantizable node: an integer initializer {@code <w>_quantized} (int8/uint8
 *       for up to 8 bits, int16/uint16 above) and a DequantizeLinear, per tensor or per channel on the
 *       node's {@link QuantizableNode#weightAxis() weight axis} ({@code axis} attribute, 1-D scale and
 *       zero point). The integers come from {@link FakeQuant#quantize}, or from the precomputed
 *       {@code integerWeights} (AdaRound), so DequantizeLinear reproduces the fake-quant weights bit for
 *       bit. With {@link QdqOptions#weightsAsQdqPair()} the weight stays float, with the values
 *       (q − Z)·s, and gets a QuantizeLinear → DequantizeLinear pair: QuantizeLinear maps each value
 *       back to exactly q.</li>
 *   <li><b>Activations</b> (every tensor in {@code activations}; at least the input of each quantizable
 *       node): a QuantizeLinear → DequantizeLinear pair that all readers share, or one pair per reader.
 *       Shape and Size readers read the QuantizeLinear's output (shared pair) or the float tensor (pair per
 *       reader): a shape needs no dequantized copy.
 *       QuantizeLinear saturates to its container type, not to the grid, so an activation grid narrower
 *       than int8/uint8 (2–7 bits, or the narrow symmetric int8 range) gets a Clip after the
 *       DequantizeLinear to the grid's end points (Clip-11 inputs, or Clip-6 attributes below opset 11):
 *       the model then equals fake-quant at every bit width. (Opset 21's int4/uint4 would cover 4 bits
 *       only and force an opset upgrade; the Clip covers 2–7 bits at any opset.)</li>
 *   <li><b>Bias</b> ({@link QdqOptions#quantizeBias()}): int32 {@code <b>_quantized} with scale =
 *       input scale × weight scale (float32 product, per channel when the weight is per channel), zero
 *       point 0, values round-half-even and clipped to the int32 range, then a DequantizeLinear.</li>
 * </ul>
 *
 * <p><b>Opset.</b> Per-channel DequantizeLinear ({@code axis}) needs opset 13: a model below 13 with
 * per-channel weights has its opset import raised to 13. 16-bit Q/DQ needs opset 21: a model with any
 * grid wider than 8 bits is raised to 21. Otherwise the opset is kept. Raising is refused, naming the
 * node, when a node uses a form the higher opset dropped (see {@code OpsetUpgrade}).
 *
 * <p>New names follow ONNX Runtime: {@code <t>_scale}, {@code <t>_zero_point},
 * {@code <t>_QuantizeLinear[_Output]}, {@code <t>_DequantizeLinear[_Output]} (with {@code _<k>} for the
 * k-th reader with a pair per reader), and a numeric suffix should a name already be taken.
 */
public final class QdqExporter {

    private QdqExporter() {}

    /** {@link #export(OnnxModel, Map, Map, Map, QdqOptions)} with every weight quantized by FakeQuant. */
    public static OnnxModel export(OnnxModel model, Map<String, QuantParams> activations,
                                   Map<String, QuantParams> weights, QdqOptions options) {
        return export(model, activations, weights, Map.of(), options);
    }

    /**
     * The QDQ model.
     *
     * @param model          the FP32 model, BatchNormalization already folded
     * @param activations    parameters per activation tensor name (per tensor)
     * @param weights        parameters per weight initializer name (per tensor, or per channel on the
     *                       node's weight axis)
     * @param integerWeights integer codes (row-major, in the weight's grid) that replace FakeQuant's
     *                       rounding for those weights
     * @throws ModelException naming the node and tensor when a quantizable node's weight or input has no
     *     parameters, per-channel parameters do not match the weight's output channels or axis, a
     *     parameter names a tensor that is not in the graph, or the opset cannot be raised
     */
    public static OnnxModel export(OnnxModel model, Map<String, QuantParams> activations,
                                   Map<String, QuantParams> weights, Map<String, int[]> integerWeights,
                                   QdqOptions options) {
        return export(model, model.quantizableNodes(), activations, weights, integerWeights, options);
    }

    /**
     * The QDQ model of a deployment profile: the activations of {@code placement} (their parameters in
     * {@code activations}, one per tensor), and each Relu/Clip of {@link QdqPlacement#folded()} removed where
     * its output quantization already clips to its bounds ({@link QdqPlacement#removable}): the compute op then
     * writes the activation's output tensor directly and its Q/DQ pair follows it. The profile's rules are
     * checked first ({@link #checkProfile}). With the {@code ort} profile, a Conv over fewer than 4 input channels
     * reads its input padded with zero channels ({@link StemPadding}): the same numbers, on ONNX Runtime's fast path;
     * a HardSigmoid whose output grid clips as it does becomes an integer Add ({@link HardSigmoidAsAdd}); an
     * Add or Mul by a one-value constant reads it as one exact code ({@link ConstantOperands}); a classifier on a
     * pooled tensor whose output is quantized becomes a 1×1 Conv ({@link ClassifierAsConv}); and
     * tensors whose rank shape inference cannot see get it declared ({@link RankHints}), so that every
     * QLinearConv runs channels-last.
     *
     * @throws ModelException as {@link #export(OnnxModel, Map, Map, Map, QdqOptions)}, and naming the tensor
     *     whose parameters the profile's target cannot run
     */
    public static OnnxModel export(OnnxModel model, Map<String, QuantParams> activations,
                                   Map<String, QuantParams> weights, Map<String, int[]> integerWeights,
                                   QdqOptions options, QdqPlacement placement) {
        OnnxModel qdq = exportUnpadded(model, activations, weights, integerWeights, options, placement);
        if (placement.profile() != QdqProfile.ORT) return qdq;
        qdq = ClassifierAsConv.rewrite(ConstantOperands.rewrite(HardSigmoidAsAdd.rewrite(qdq)));
        qdq = RankHints.declare(options.weightsAsQdqPair() ? qdq : StemPadding.pad(qdq));
        // a constant those rules now read as an exact code (GELU's ½ in Swin-T: 12 of them) is read by nothing else
        GraphProto used = withoutUnusedInitializers(qdq.graph());
        return used == qdq.graph() ? qdq : qdq.withGraph(used);
    }

    /** The profile's QDQ model without {@link StemPadding} and {@link RankHints} (their tests' reference). */
    static OnnxModel exportUnpadded(OnnxModel model, Map<String, QuantParams> activations,
                                    Map<String, QuantParams> weights, Map<String, int[]> integerWeights,
                                    QdqOptions options, QdqPlacement placement) {
        checkProfile(model, placement.profile(), activations, weights);
        List<QuantizableNode> nodes = model.quantizableNodes();
        return export(removeFoldedActivations(model, placement, activations), nodes, activations, weights,
                integerWeights, options);
    }

    /**
     * The rules of the profile's consumer. TensorRT (explicit quantization) takes only signed int8 with zero
     * point 0 for activations and weights; ONNX Runtime runs every grid quantcal writes (8-bit ones on its
     * integer kernels), so it has no further rule here.
     *
     * @throws ModelException naming the first tensor that breaks a rule, the rule and the configuration to change
     */
    public static void checkProfile(OnnxModel model, QdqProfile profile, Map<String, QuantParams> activations,
                                    Map<String, QuantParams> weights) {
        if (profile != QdqProfile.TENSORRT) return;
        for (var e : activations.entrySet()) tensorRtRule(model, "activation", e.getKey(), e.getValue());
        for (var e : weights.entrySet()) tensorRtRule(model, "weight", e.getKey(), e.getValue());
    }

    private static void tensorRtRule(OnnxModel m, String role, String t, QuantParams p) {
        String why = null;
        if (p.grid().bits() != 8) {
            why = p.grid().bits() + "-bit grid; TensorRT's explicit quantization takes int8 only";
        } else if (!p.grid().signed()) {
            why = "unsigned grid [" + p.qmin() + ", " + p.qmax() + "]; TensorRT rejects uint8";
        } else {
            for (int c = 0; c < p.channels(); c++) {
                if (p.zeroPoint(c) != 0) {
                    why = "zero point " + p.zeroPoint(c) + (p.perChannel() ? " (channel " + c + ")" : "")
                            + "; TensorRT takes zero point 0 only (symmetric)";
                    break;
                }
            }
        }
        if (why != null) {
            throw new ModelException(m.source() + ": export.profile = tensorrt: " + role + " " + t + ": " + why
                    + (role.equals("weight") ? " (set quantization.weights.bits = 8, symmetric = true)"
                            : " (set quantization.activations.bits = 8)"));
        }
    }

    /** The model with every removable Relu/Clip of the placement gone (see {@link QdqPlacement#removable}). */
    static OnnxModel removeFoldedActivations(OnnxModel m, QdqPlacement placement, Map<String, QuantParams> activations) {
        GraphEditor e = null;
        for (QdqPlacement.FoldedActivation f : placement.removed(activations)) {
            NodeProto producer = m.producer(f.input());
            if (producer == null) continue;
            if (e == null) e = new GraphEditor(m.graph());
            int at = e.position(producer.getName());
            NodeProto.Builder b = e.node(at).toBuilder();
            for (int k = 0; k < b.getOutputCount(); k++) if (b.getOutput(k).equals(f.input())) b.setOutput(k, f.output());
            e.replace(at, b.build());
            e.remove(e.position(f.node()));
        }
        return e == null ? m : m.withGraph(e.build());
    }

    /**
     * A partly quantized model: only the quantizable nodes named in {@code onlyNodes} get their weight,
     * bias and input activation quantized; every other node stays FP32. Entries of the maps that belong to
     * other nodes are ignored (an activation tensor shared with a named node is quantized for all its
     * readers, as in the full export). Sequential EasyQuant and AdaRound's asymmetric reconstruction take
     * a layer's input from such a model of the layers before it.
     *
     * @throws ModelException as the full export, and when a name in {@code onlyNodes} is not a quantizable
     *     node of the model
     */
    public static OnnxModel export(OnnxModel model, Map<String, QuantParams> activations,
                                   Map<String, QuantParams> weights, Map<String, int[]> integerWeights,
                                   QdqOptions options, Set<String> onlyNodes) {
        List<QuantizableNode> nodes = new ArrayList<>();
        Set<String> known = new LinkedHashSet<>();
        for (QuantizableNode n : model.quantizableNodes()) {
            known.add(n.name());
            if (onlyNodes.contains(n.name())) nodes.add(n);
        }
        for (String name : onlyNodes) {
            if (!known.contains(name)) {
                throw new ModelException(model.source() + ": partial QDQ export of node " + name
                        + ", which is not a quantizable node; quantizable nodes are " + known);
            }
        }
        Map<String, QuantParams> a = new LinkedHashMap<>();
        Map<String, QuantParams> w = new LinkedHashMap<>();
        Map<String, int[]> q = new LinkedHashMap<>();
        for (QuantizableNode n : nodes) {
            if (activations.containsKey(n.input())) a.put(n.input(), activations.get(n.input()));
            if (weights.containsKey(n.weight())) w.put(n.weight(), weights.get(n.weight()));
            if (integerWeights.containsKey(n.weight())) q.put(n.weight(), integerWeights.get(n.weight()));
        }
        // a weight shared with a node left in FP32 would be quantized for that node too: refuse rather than do so
        for (QuantizableNode n : model.quantizableNodes()) {
            if (!onlyNodes.contains(n.name()) && w.containsKey(n.weight())) {
                throw new ModelException(model.source() + ": partial QDQ export: weight " + n.weight()
                        + " is shared by node " + n.name() + ", which is not among the nodes to quantize");
            }
        }
        return export(model, nodes, a, w, q, options);
    }

    private static OnnxModel export(OnnxModel model, List<QuantizableNode> nodes, Map<String, QuantParams> activations,
                                    Map<String, QuantParams> weights, Map<String, int[]> integerWeights,
                                    QdqOptions options) {
        Plan plan = Plan.check(model, nodes, activations, weights, integerWeights);
        long opset = model.opset();
        long target = opset;
        String reason = null;
        if (plan.perChannelWeights && target < 13) {
            target = 13;
            reason = "per-channel DequantizeLinear (axis) needs opset 13";
        }
        if (plan.wide && target < 21) {
            target = 21;
            reason = "16-bit QuantizeLinear/DequantizeLinear needs opset 21";
        }
        if (target != opset) {
            // forms that only moved from attributes to inputs are rewritten; anything else is named
            model = OpsetUpgrade.rewrite(model, target);
            OpsetUpgrade.check(model, target, reason);
        }

        Writer w = new Writer(model, options, target);
        if (options.quantizeBias()) {
            for (QuantizableNode n : nodes) {
                if (biasOverflow(model, n, activations.get(n.input()), weights.get(n.weight())) > 1) w.floatNodes.add(n.name());
            }
        }
        for (var e : plan.weightNodes.entrySet()) {
            w.weight(e.getKey(), weights.get(e.getKey()), integerWeights.get(e.getKey()), e.getValue());
        }
        if (options.quantizeBias()) {
            for (QuantizableNode n : nodes) {
                if (n.bias() != null) w.bias(n, activations.get(n.input()), weights.get(n.weight()));
            }
        }
        for (String t : plan.activationOrder) w.activation(t, activations.get(t));
        OnnxModel out = model.withGraph(withoutUnusedInitializers(w.build()));
        return target != opset ? out.withOpset(target) : out;
    }

    /**
     * {@code g} without the initializers nothing reads any more (a folded ReLU6's min and max): ONNX Runtime warns
     * of each one when it loads the model (SSDlite320's export printed 48 such warnings per session).
     */
    static onnx.Onnx.GraphProto withoutUnusedInitializers(onnx.Onnx.GraphProto g) {
        java.util.Set<String> used = new java.util.HashSet<>();
        for (onnx.Onnx.NodeProto n : g.getNodeList()) {
            used.addAll(n.getInputList());
            Subgraphs.names(n, used);
        }
        for (onnx.Onnx.ValueInfoProto o : g.getOutputList()) used.add(o.getName());
        for (onnx.Onnx.ValueInfoProto i : g.getInputList()) used.add(i.getName()); // IR-3 models list them as inputs
        boolean any = false;
        for (onnx.Onnx.TensorProto t : g.getInitializerList()) any |= !used.contains(t.getName());
        if (!any) return g;
        onnx.Onnx.GraphProto.Builder b = g.toBuilder().clearInitializer();
        for (onnx.Onnx.TensorProto t : g.getInitializerList()) if (used.contains(t.getName())) b.addInitializer(t);
        return b.build();
    }

    /**
     * How far node {@code n}'s bias exceeds what int32 codes at scale s_x · s_w (per channel when the weight is) hold:
     * the largest |b| / (s · (2^31 − 1)); above 1, some code would clip, changing the layer's output by up to the
     * clipped amount, silently. The export then writes that bias at a larger scale of its own ({@link #biasScales}) and
     * has ONNX Runtime compute the node in float (see {@code Writer.floatNodes}); the table's bias rows give that
     * scale. It happens
     * where the scales are small against the bias: 16-bit activations and weights (s_x · s_w near 1e-9 leaves ±2 of
     * range), or a layer whose weights are tiny against its bias (one of PP-OCRv4 det's 64 layers at W8A8).
     *
     * @return 0 when the node has no bias or the parameters are missing
     */
    public static double biasOverflow(OnnxModel m, QuantizableNode n, QuantParams input, QuantParams weight) {
        if (n.bias() == null || input == null || weight == null || !m.isInitializer(n.bias())) return 0;
        float[] values = m.initializerFloats(n.bias());
        float sx = (float) input.scale(0);
        double worst = 0;
        for (int i = 0; i < values.length; i++) {
            float scale = sx * (float) weight.scale(weight.perChannel() ? i : 0);
            worst = Math.max(worst, Math.abs((double) values[i] / scale) / Integer.MAX_VALUE);
        }
        return worst;
    }

    /**
     * Per-channel weight parameters of node {@code n} with each channel's scale raised where its bias would not fit
     * int32 codes at s_x · s_w: to |b_c| / (s_x · 2·10⁹), so that {@link #biasOverflow} stays below 1 and ONNX Runtime
     * keeps the node in an integer kernel (ONNX Runtime's own quantizer raises weight scales for its int32 bias the
     * same way). It happens for channels whose weights are all but zero (max |w_c| of 10⁻¹⁴ in PP-OCRv4 det, where
     * the channel's output is its bias): their codes become 0, which changes the output by less than the channel's
     * weights could. Returns {@code weight} itself when no channel needs it, for per-tensor weights (one scale for
     * all channels: raising it would coarsen every channel, so such a node keeps the float fallback), for grids wider
     * than 8 bits (ONNX Runtime has no integer kernel for them: the fallback costs nothing there, while at 16 bits a
     * raise would reach channels whose weights matter) and without parameters or bias.
     */
    public static QuantParams weightScalesForBias(OnnxModel m, QuantizableNode n, QuantParams input, QuantParams weight) {
        if (weight == null || input == null || !weight.perChannel() || weight.grid().bits() > 8 || input.grid().bits() > 8
                || biasOverflow(m, n, input, weight) <= 1) {
            return weight;
        }
        float[] values = m.initializerFloats(n.bias());
        if (values.length != weight.channels()) return weight;
        float sx = (float) input.scale(0);
        double[] scale = new double[weight.channels()];
        for (int c = 0; c < scale.length; c++) {
            double need = Math.abs((double) values[c]) / ((double) sx * 2.0e9);
            scale[c] = Math.max(weight.scale(c), Math.nextUp((float) need));
        }
        return new QuantParams(weight.grid(), weight.symmetric(), weight.axis(), scale, weight.zeroPoint());
    }

    /**
     * The int32 bias codes' scales of node {@code n} (one per weight channel, or one): s_x · s_w in float32, as integer
     * kernels take them; where that cannot hold the bias ({@link #biasOverflow} above 1), per channel the larger of it
     * and max |b| / 2·10^9, so that every code fits with room to spare.
     */
    public static float[] biasScales(OnnxModel m, QuantizableNode n, QuantParams input, QuantParams weight) {
        float sx = (float) input.scale(0);
        int channels = weight.perChannel() ? weight.channels() : 1;
        float[] scale = new float[channels];
        for (int c = 0; c < channels; c++) scale[c] = sx * (float) weight.scale(c);
        if (biasOverflow(m, n, input, weight) <= 1) return scale;
        float[] values = m.initializerFloats(n.bias());
        double[] max = new double[channels];
        for (int i = 0; i < values.length; i++) {
            int c = weight.perChannel() ? i : 0;
            max[c] = Math.max(max[c], Math.abs((double) values[i]));
        }
        for (int c = 0; c < channels; c++) scale[c] = Math.max(scale[c], (float) (max[c] / 2.0e9));
        return scale;
    }

    /** The container type of a grid: 8-bit types up to 8 bits, 16-bit above. */
    static DataType container(QuantGrid g) {
        if (g.bits() <= 8) return g.signed() ? DataType.INT8 : DataType.UINT8;
        return g.signed() ? DataType.INT16 : DataType.UINT16;
    }

    /** Validation of the inputs, and what to quantize in which order. */
    private static final class Plan {
        /** weight name → the quantizable nodes that use it as their weight, in graph order */
        final Map<String, List<QuantizableNode>> weightNodes = new LinkedHashMap<>();
        final List<String> activationOrder = new ArrayList<>();
        boolean perChannelWeights;
        boolean wide;

        static Plan check(OnnxModel m, List<QuantizableNode> nodes, Map<String, QuantParams> activations,
                          Map<String, QuantParams> weights, Map<String, int[]> integerWeights) {
            Plan p = new Plan();
            String src = m.source();
            for (QuantizableNode n : nodes) {
                String where = src + ": node " + n.name() + " (" + n.opType() + ")";
                if (!activations.containsKey(n.input())) {
                    throw new ModelException(where + ": no quantization parameters for its input activation " + n.input());
                }
                QuantParams wp = weights.get(n.weight());
                if (wp == null) {
                    throw new ModelException(where + ": no quantization parameters for its weight " + n.weight());
                }
                if (wp.perChannel()) {
                    if (wp.axis() != n.weightAxis()) {
                        throw new ModelException(where + ": weight " + n.weight() + " has per-channel parameters on axis "
                                + wp.axis() + ", expected axis " + n.weightAxis() + " (its output channels)");
                    }
                    if (wp.channels() != n.outputChannels()) {
                        throw new ModelException(where + ": weight " + n.weight() + " has " + wp.channels()
                                + " per-channel parameters, expected " + n.outputChannels() + " (its output channels on axis "
                                + n.weightAxis() + ")");
                    }
                }
                p.weightNodes.computeIfAbsent(n.weight(), k -> new ArrayList<>()).add(n);
            }
            for (String wName : weights.keySet()) {
                if (!p.weightNodes.containsKey(wName)) {
                    throw new ModelException(src + ": weight parameters given for " + wName
                            + ", which is not the weight of any quantizable node");
                }
            }
            for (var e : integerWeights.entrySet()) {
                String wName = e.getKey();
                QuantParams wp = weights.get(wName);
                if (wp == null) {
                    throw new ModelException(src + ": integer weights given for " + wName
                            + ", which has no weight parameters");
                }
                String where = src + ": node " + p.weightNodes.get(wName).get(0).name() + ": weight " + wName;
                int[] q = e.getValue();
                long n = Tensors.count(m.shape(wName));
                if (q.length != n) {
                    throw new ModelException(where + ": " + q.length + " integer weights, expected " + n);
                }
                for (int i = 0; i < q.length; i++) {
                    if (q[i] < wp.qmin() || q[i] > wp.qmax()) {
                        throw new ModelException(where + ": integer weight " + q[i] + " at index " + i
                                + " outside the grid [" + wp.qmin() + ", " + wp.qmax() + "]");
                    }
                }
            }
            for (var e : activations.entrySet()) {
                String t = e.getKey();
                if (m.isInitializer(t)) {
                    throw new ModelException(src + ": activation parameters given for " + t
                            + ", which is an initializer (weights go in the weights map)");
                }
                if (!m.hasTensor(t)) {
                    throw new ModelException(src + ": activation parameters given for tensor " + t
                            + ", which no node produces and no graph input provides");
                }
                if (e.getValue().perChannel()) {
                    throw new ModelException(src + ": activation " + t + " has per-channel parameters (axis "
                            + e.getValue().axis() + "), expected per-tensor");
                }
                if (e.getValue().grid().bits() > 8) p.wide = true;
            }
            for (String wName : p.weightNodes.keySet()) {
                QuantParams wp = weights.get(wName);
                if (wp.perChannel()) p.perChannelWeights = true;
                if (wp.grid().bits() > 8) p.wide = true;
                List<QuantizableNode> users = p.weightNodes.get(wName);
                for (QuantizableNode u : users) {
                    if (wp.perChannel() && u.weightAxis() != users.get(0).weightAxis()) {
                        throw new ModelException(src + ": weight " + wName + " is shared by nodes " + users.get(0).name()
                                + " and " + u.name() + " with different output axes; per-channel parameters cannot fit both");
                    }
                }
            }
            // Deterministic order whatever map the caller passed: graph inputs, then node outputs in graph order.
            Set<String> order = new LinkedHashSet<>();
            for (ValueInfoProto v : m.graph().getInputList()) if (activations.containsKey(v.getName())) order.add(v.getName());
            for (NodeProto n : m.nodes()) {
                for (String o : n.getOutputList()) if (activations.containsKey(o)) order.add(o);
            }
            p.activationOrder.addAll(order);
            return p;
        }
    }

    /** Adds the Q/DQ nodes and initializers to a working copy of the graph. */
    private static final class Writer {
        private final OnnxModel m;
        private final QdqOptions options;
        private final GraphEditor edit;
        private final List<String> maybeUnused = new ArrayList<>();
        /**
         * Nodes whose bias int32 codes at s_x·s_w cannot hold ({@link #biasOverflow}). Their bias is written at a scale
         * of its own ({@link #biasScales}) and added after the node by an Add, the node itself left without bias: ONNX
         * Runtime then computes it in float over the dequantized input and weight (it fuses DequantizeLinear → Conv →
         * QuantizeLinear into an integer kernel only when the Conv's output goes to the QuantizeLinear), and the
         * numbers are the table's. What does not hold: a bias DequantizeLinear at another scale read by the node (an
         * integer kernel takes the bias at s_x·s_w, so the fused node would misread it); a float bias read by the node
         * (ONNX Runtime's WeightBiasQuantization optimization quantizes it to int32 at s_x·s_w itself, overflowing:
         * resnet_small W16A16 gave 54 dB output SQNR operator by operator, 12.8 dB with that optimization); weight codes
         * in an int32 container (ONNX Runtime fuses them into a QLinearConv, which then fails to load).
         */
        final Set<String> floatNodes = new LinkedHashSet<>();
        /** The opset the written model declares (Clip takes its bounds as inputs from opset 11). */
        private final long opset;

        Writer(OnnxModel m, QdqOptions options, long opset) {
            this.m = m;
            this.opset = opset;
            this.options = options;
            this.edit = new GraphEditor(m.graph());
        }

        void weight(String w, QuantParams p, int[] precomputed, List<QuantizableNode> allUsers) {
            long[] shape = m.shape(w);
            float[] values = m.initializerFloats(w);
            int[] q = precomputed != null ? precomputed : FakeQuant.quantize(values, shape, p);
            List<QuantizableNode> users = allUsers;
            if (options.unsignedWeights() && !options.weightsAsQdqPair() && p.grid().signed() && p.grid().bits() <= 8) {
                // the same grid shifted by 128 into uint8: (q + 128 − (Z + 128))·s = (q − Z)·s for every code
                int[] shifted = new int[q.length];
                for (int i = 0; i < q.length; i++) shifted[i] = q[i] + 128;
                int[] z = new int[p.channels()];
                for (int c = 0; c < z.length; c++) z[c] = p.zeroPoint(c) + 128;
                q = shifted;
                p = new QuantParams(QuantGrid.of(8, false), p.symmetric(), p.axis(), p.scale(), z);
            }
            String[] sz = scaleAndZeroPoint(w, p);
            Set<String> userNames = new LinkedHashSet<>();
            for (QuantizableNode u : users) userNames.add(u.name());
            boolean otherReaders = m.isGraphOutput(w)
                    || m.consumers(w).stream().anyMatch(c -> !userNames.contains(c.getName()));
            int first = edit.position(users.get(0).name());
            String dqInput;
            if (options.weightsAsQdqPair()) {
                // (q − Z)·s quantizes back to exactly q, whatever rounding or AdaRound produced q
                String floatName = otherReaders ? edit.uniqueName(w + "_fake_quant") : w;
                edit.putInitializer(Graphs.floatTensor(floatName, FakeQuant.dequantize(q, shape, p), shape));
                dqInput = edit.uniqueName(w + "_QuantizeLinear_Output");
                edit.insertBefore(first, qdqNode("QuantizeLinear", edit.uniqueName(w + "_QuantizeLinear"),
                        floatName, sz, dqInput, p));
            } else {
                dqInput = edit.uniqueName(w + "_quantized");
                edit.putInitializer(Graphs.intTensor(dqInput, container(p.grid()), q, shape));
                if (!otherReaders) maybeUnused.add(w);
            }
            String dqOut = edit.uniqueName(w + "_DequantizeLinear_Output");
            edit.insertBefore(first, qdqNode("DequantizeLinear", edit.uniqueName(w + "_DequantizeLinear"), dqInput, sz,
                    dqOut, p));
            for (QuantizableNode u : users) rewire(edit.position(u.name()), 1, dqOut);
        }

        void bias(QuantizableNode n, QuantParams input, QuantParams weight) {
            String b = n.bias();
            long[] shape = m.shape(b);
            float[] values = m.initializerFloats(b);
            int channels = weight.perChannel() ? weight.channels() : 1;
            float[] scale = biasScales(m, n, input, weight);
            boolean added = floatNodes.contains(n.name());
            if (added && n.opType().startsWith("Conv")) {
                // [C] → [C, 1, ..., 1]: broadcast over the output's spatial dimensions
                int rank = m.shape(n.weight()).length;
                shape = new long[rank - 1];
                java.util.Arrays.fill(shape, 1L);
                shape[0] = values.length;
            }
            int[] q = new int[values.length];
            for (int i = 0; i < q.length; i++) {
                q[i] = AffineQuantizer.quantize(values[i], scale[weight.perChannel() ? i : 0], 0,
                        Integer.MIN_VALUE, Integer.MAX_VALUE);
            }
            String qName = edit.uniqueName(b + "_quantized");
            edit.putInitializer(Graphs.int32Tensor(qName, q, shape));
            String sName = edit.uniqueName(b + "_scale");
            String zName = edit.uniqueName(b + "_zero_point");
            long[] dims = weight.perChannel() ? new long[] {channels} : new long[0];
            edit.putInitializer(Graphs.floatTensor(sName, scale, dims));
            edit.putInitializer(Graphs.int32Tensor(zName, new int[channels], dims));
            String out = edit.uniqueName(b + "_DequantizeLinear_Output");
            Map<String, Object> attrs = weight.perChannel()
                    ? Map.of("axis", added && n.opType().startsWith("Conv") ? 0L : (long) (shape.length - 1)) : Map.of();
            int at = edit.position(n.name());
            edit.insertBefore(at, Graphs.node("DequantizeLinear", edit.uniqueName(b + "_DequantizeLinear"),
                    List.of(qName, sName, zName), List.of(out), attrs));
            maybeUnused.add(b);
            if (!added) {
                rewire(at, 2, out);
                return;
            }
            NodeProto node = edit.node(at);
            float beta = 1f;
            for (var a : node.getAttributeList()) if (a.getName().equals("beta")) beta = a.getF(); // Gemm: + beta·C
            if (beta != 1f) {
                String betaName = edit.uniqueName(b + "_beta");
                edit.putInitializer(Graphs.floatTensor(betaName, new float[] {beta}));
                String scaled = edit.uniqueName(b + "_times_beta");
                edit.insertBefore(at, Graphs.node("Mul", edit.uniqueName(b + "_beta_mul"), List.of(out, betaName), List.of(scaled)));
                out = scaled;
            }
            String y = node.getOutput(0), raw = edit.uniqueName(y + "_without_bias");
            NodeProto.Builder nb = node.toBuilder().clearInput().addInput(node.getInput(0)).addInput(node.getInput(1)).setOutput(0, raw);
            edit.replace(at, nb.build());
            edit.insertAfter(at, Graphs.node("Add", edit.uniqueName(n.name() + "_bias_add"), List.of(raw, out), List.of(y)));
        }

        void activation(String t, QuantParams p) {
            List<NodeProto> readers = m.consumers(t);
            if (readers.isEmpty()) return; // only a graph output: nothing reads a dequantized copy
            String[] sz = scaleAndZeroPoint(t, p);
            // Shape and Size read only the tensor's shape, which its quantized form has too: they read the float tensor
            // (a pair per reader) or the QuantizeLinear's output (a shared pair), never a dequantized copy, so ONNX
            // Runtime neither dequantizes a whole tensor for its shape nor sees a second reader of the producer's output
            if (options.pairPerConsumer()) {
                int k = 0;
                for (NodeProto r : readers) {
                    if (shapeOnly(r)) continue;
                    int at = edit.position(r.getName());
                    String sfx = "_" + (++k);
                    String[] out = pair(t, sz, p, sfx, n -> edit.insertBefore(at, n));
                    rewireAll(at, t, out[1]);
                }
            } else {
                NodeProto producer = m.producer(t);
                Integer after = producer == null ? null : edit.position(producer.getName());
                String[] out = pair(t, sz, p, "", n -> {
                    if (after == null) edit.insertAtStart(n); else edit.insertAfter(after, n);
                });
                for (NodeProto r : readers) rewireAll(edit.position(r.getName()), t, out[shapeOnly(r) ? 0 : 1]);
            }
        }

        static boolean shapeOnly(NodeProto n) {
            return (n.getOpType().equals("Shape") || n.getOpType().equals("Size")) && Nodes.defaultDomain(n.getDomain());
        }

        /** The Q → DQ (→ Clip) chain of {@code t}: the QuantizeLinear's output, and the tensor its float readers read. */
        private String[] pair(String t, String[] sz, QuantParams p, String sfx, java.util.function.Consumer<NodeProto> add) {
            String qOut = edit.uniqueName(t + "_QuantizeLinear_Output" + sfx);
            String dqOut = edit.uniqueName(t + "_DequantizeLinear_Output" + sfx);
            add.accept(qdqNode("QuantizeLinear", edit.uniqueName(t + "_QuantizeLinear" + sfx), t, sz, qOut, p));
            add.accept(qdqNode("DequantizeLinear", edit.uniqueName(t + "_DequantizeLinear" + sfx), qOut, sz, dqOut, p));
            if (!narrowerThanContainer(p)) return new String[] {qOut, dqOut};
            // QuantizeLinear saturates to its container, not to the grid: a Clip to the grid's end points makes the
            // model the table describes. The bounds are the float32 products DequantizeLinear itself computes, so
            // values inside the grid pass unchanged and values beyond it land exactly on (qmin|qmax − Z)·s.
            if (p.perChannel()) {
                throw new IllegalArgumentException("activation " + t + ": a per-channel " + p.grid().bits() + "-bit grid is narrower"
                        + " than its 8-bit container and cannot be clipped by one Clip; use per-tensor activations");
            }
            float s = (float) p.scale(0);
            float lo = (float) (p.qmin() - p.zeroPoint(0)) * s;
            float hi = (float) (p.qmax() - p.zeroPoint(0)) * s;
            String clipOut = edit.uniqueName(t + "_grid_clip_Output" + sfx);
            String name = edit.uniqueName(t + "_grid_clip" + sfx);
            if (opset >= 11) {
                String loName = edit.uniqueName(t + "_grid_min");
                String hiName = edit.uniqueName(t + "_grid_max");
                edit.putInitializer(Graphs.floatTensor(loName, new float[] {lo}));
                edit.putInitializer(Graphs.floatTensor(hiName, new float[] {hi}));
                add.accept(Graphs.node("Clip", name, List.of(dqOut, loName, hiName), List.of(clipOut), Map.of()));
            } else {
                add.accept(Graphs.node("Clip", name, List.of(dqOut), List.of(clipOut), Map.of("min", lo, "max", hi)));
            }
            return new String[] {qOut, clipOut};
        }

        /** A grid with fewer levels than its container type (2–7 bits, or int8's narrow range −127..127). */
        static boolean narrowerThanContainer(QuantParams p) {
            QuantGrid container = QuantGrid.of(p.grid().bits() <= 8 ? 8 : 16, p.grid().signed()); // see container()
            return p.qmin() > container.qmin() || p.qmax() < container.qmax();
        }

        /** Scale (float32) and zero point (container type) initializers: scalars per tensor, 1-D per channel. */
        private String[] scaleAndZeroPoint(String t, QuantParams p) {
            int c = p.channels();
            float[] s = new float[c];
            int[] z = new int[c];
            for (int i = 0; i < c; i++) {
                s[i] = (float) p.scale(i);
                z[i] = p.zeroPoint(i);
            }
            long[] dims = p.perChannel() ? new long[] {c} : new long[0];
            String sName = edit.uniqueName(t + "_scale");
            String zName = edit.uniqueName(t + "_zero_point");
            edit.putInitializer(Graphs.floatTensor(sName, s, dims));
            edit.putInitializer(Graphs.intTensor(zName, container(p.grid()), z, dims));
            return new String[] {sName, zName};
        }

        private static NodeProto qdqNode(String op, String name, String input, String[] sz, String output, QuantParams p) {
            Map<String, Object> attrs = p.perChannel() ? Map.of("axis", (long) p.axis()) : Map.of();
            return Graphs.node(op, name, List.of(input, sz[0], sz[1]), List.of(output), attrs);
        }

        private void rewire(int position, int slot, String tensor) {
            NodeProto n = edit.node(position);
            edit.replace(position, n.toBuilder().setInput(slot, tensor).build());
        }

        private void rewireAll(int position, String from, String to) {
            edit.rewireAll(position, from, to);
        }

        onnx.Onnx.GraphProto build() {
            edit.dropUnused(maybeUnused);
            return edit.build();
        }
    }
}
