package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.kernels.calib.ActivationStatistics;
import io.quantcal.kernels.dfq.BiasCorrection;
import io.quantcal.kernels.dfq.ChannelMeans;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import scala.Tuple2;

/**
 * {@code bias-correct} (Nagel et al. 2019, §4.2): subtract the expected output error of weight quantization,
 * E[W̃x] − E[Wx] = (W̃ − W)·E[x], from each Conv's bias. {@code empirical}: E[x] per input channel is
 * gathered in Spark over the calibration data (FP network) — the same as the difference of the per-channel
 * means of the quantized-weight and FP layer outputs on those inputs, by linearity; per-sample sums are added
 * in sample order ({@link SampleOrder}), so the corrected biases do not depend on the partitioning. {@code analytic}: E[x]
 * from the preceding layer's BatchNorm β, γ through its ReLU/ReLU6 (clipped normal), no data. Runs after
 * {@code calibrate} (and after {@code easyquant} or {@code adaround}): it uses the chosen weight parameters and
 * AdaRound's integer weights where present.
 *
 * <p>E[x] is a statistic of the FP network over the calibration data, which {@code calibrate} runs already: when the
 * pipeline has no pass between calibrate and bias-correct that changes the FP network ({@link #meansFromCalibrate};
 * easyquant, adaround and learn change scales and integer weights, not the FP model), calibrate sums the Conv inputs
 * per channel in its own pass and this pass reads no data ({@code input_means = "from calibrate"} in run.json).
 * Otherwise it scans the data itself as described above ({@code "own scan (why)"}). The two agree to within rounding:
 * calibrate adds the per-sample double sums exactly and rounds once, the own scan adds them left to right in sample
 * order (a difference of at most (n − 1)·2⁻⁵³·Σ|per-sample sum| per channel; see
 * {@link io.quantcal.kernels.calib.SampleChannelSums}); and calibrate's session, which also returns the Conv outputs
 * before residual Adds, is not fused Conv + Add by ONNX Runtime, so those activations round differently in float32
 * (E[x] within 4e-8 of E|x| on the bundled example, the same corrected biases: {@code BiasCorrectMeansTest}).
 */
public final class BiasCorrectPass implements Pass {

    @Override
    public String name() {
        return "bias-correct";
    }

    /**
     * Whether {@code calibrate} should gather E[x] of the Conv inputs for this pass: the pipeline runs bias-correct
     * (empirical) after calibrate, and no pass between them changes the FP network
     * ({@link PassRegistry#fpNetworkChangeBetween}).
     */
    public static boolean meansFromCalibrate(QuantcalConfig cfg) {
        List<String> p = cfg.pipeline();
        int c = p.indexOf("calibrate"), b = p.indexOf("bias-correct");
        return c >= 0 && b > c && cfg.dfq().biasCorrection().equals("empirical")
                && PassRegistry.fpNetworkChangeBetween(p, "calibrate", "bias-correct").isEmpty();
    }

    /** Why this run cannot take calibrate's means for {@code tensors} of {@code model}; null when it can. */
    static String ownScanReason(QuantcalConfig cfg, PipelineState state, OnnxModel model, java.util.Collection<String> tensors) {
        var change = PassRegistry.fpNetworkChangeBetween(cfg.pipeline(), "calibrate", "bias-correct");
        if (change.isPresent()) return change.get() + " between calibrate and bias-correct changes the FP network";
        PipelineState.InputMeans m = state.inputMeans();
        if (m == null) return "calibrate gathered no means";
        if (!m.modelSha256().equals(model.sha256())) return "the FP model changed after calibrate";
        for (String t : tensors) if (!m.byTensor().containsKey(t)) return "calibrate did not measure tensor " + t;
        return null;
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        if (!state.calibrated()) {
            throw new IllegalStateException("pass bias-correct needs weight parameters: put calibrate before it in quantcal.pipeline");
        }
        QuantcalConfig cfg = ctx.config();
        OnnxModel model = state.model();
        Map<String, float[]> quantized = new LinkedHashMap<>();
        List<QuantizableNode> convs = new ArrayList<>();
        for (QuantizableNode n : state.nodes()) {
            if (!n.kind().dataFree()) continue;
            TensorQuant w = state.quant().get(n.name() + "/weight");
            long[] shape = model.shape(n.weight());
            // W̃ is what the QDQ model will hold: AdaRound's codes when that pass chose them, else round to nearest
            int[] codes = state.integerWeights().get(n.weight());
            quantized.put(n.name(), codes != null ? FakeQuant.dequantize(codes, shape, w.params())
                    : FakeQuant.apply(model.initializerFloats(n.weight()), shape, w.params()));
            convs.add(n);
        }
        Map<String, float[]> biases;
        String meansFrom = null;
        String variant = cfg.dfq().biasCorrection();
        if (variant.equals("analytic")) {
            biases = BiasCorrection.analytic(model, quantized, state.preActivations());
        } else {
            List<String> tensors = new ArrayList<>();
            for (QuantizableNode n : convs) if (!tensors.contains(n.input())) tensors.add(n.input());
            String why = ownScanReason(cfg, state, model, tensors);
            Map<String, ChannelMeans> means = why == null ? state.inputMeans().byTensor() : inputMeans(ctx, model, convs);
            meansFrom = why == null ? "from calibrate" : "own scan (" + why + ")";
            biases = new LinkedHashMap<>();
            for (QuantizableNode n : convs) {
                double[] ex = means.get(n.input()).means();
                double[] shift = BiasCorrection.outputShift(model.initializerFloats(n.weight()), quantized.get(n.name()),
                        n.weightShape(), n.group(), ex);
                float[] b = n.bias() == null ? new float[n.outputChannels()] : model.initializerFloats(n.bias());
                biases.put(n.name(), BiasCorrection.corrected(b, shift));
            }
        }
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("variant", variant);
        if (meansFrom != null) s.put("input_means", meansFrom);
        Map<String, Object> per = new LinkedHashMap<>();
        for (var e : biases.entrySet()) {
            QuantizableNode n = state.nodes().stream().filter(x -> x.name().equals(e.getKey())).findFirst().orElseThrow();
            float[] old = n.bias() == null ? new float[n.outputChannels()] : model.initializerFloats(n.bias());
            float[] corr = new float[old.length];
            for (int i = 0; i < old.length; i++) corr[i] = e.getValue()[i] - old[i];
            per.put(e.getKey(), corr);
        }
        s.put("corrections", per);
        ctx.out().printf("bias-correct (%s): %d of %d Conv biases corrected%s%n", variant, biases.size(), convs.size(),
                meansFrom == null ? "" : ", E[x] " + meansFrom);
        OnnxModel corrected = BiasCorrection.withBiases(model, biases);
        return state.withCorrectedModel(corrected).withSummary(name(), s);
    }

    /**
     * The own scan: E[x] of each Conv input of {@code convs} on {@code model} over the calibration data, per-sample
     * double sums added left to right in sample order ({@link SampleOrder}). What the pass uses when calibrate's means
     * do not apply.
     */
    public static Map<String, ChannelMeans> inputMeans(RunContext ctx, OnnxModel model, List<QuantizableNode> convs) {
        QuantcalConfig cfg = ctx.config();
        List<String> tensors = new ArrayList<>();
        for (QuantizableNode n : convs) if (!tensors.contains(n.input())) tensors.add(n.input());
        if (tensors.isEmpty()) return Map.of();
        ModelInputs input = InputBinding.of(model, cfg, cfg.calibration());
        int partitions = SampleSets.partitions(ctx.spark(), cfg.calibration());
        ctx.progress().step("bias-correct: E[x] of every corrected layer's input, per sample", 0);
        JavaRDD<Sample> samples = ctx.samples().get(input); // decoded once per run
        BroadcastModel bm = BroadcastModel.of(ctx, model, "model");
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        io.quantcal.kernels.calib.BatchBudget batch = TaskMemory.budget(ctx.spark().sparkContext(), cfg);
        boolean skipBad = cfg.calibration().skipBadSamples();
        String doing = "capturing " + tensors.size() + " layer inputs of " + bm.displayName();
        // per-sample sums keyed by sample id, added in sample order: the means do not depend on the partitioning
        JavaPairRDD<Long, LinkedHashMap<String, ChannelMeans>> perSample = samples.mapPartitionsToPair(it ->
                TaskMemory.guard("bias-correct", doing, () -> {
            SamplePartitions.Split split = SamplePartitions.split(it, skipBad);
            List<Map<String, ChannelMeans>> sums;
            try (var r = bm.lease(tensors, opts)) {
                sums = ActivationStatistics.channelSums(r.runner(), input,
                        split.good().stream().map(Sample::inputs).iterator(), batch,
                        bm.displayName() + ", " + tensors.size() + " captured tensors", tensors);
            }
            List<Tuple2<Long, LinkedHashMap<String, ChannelMeans>>> out = new ArrayList<>();
            for (int i = 0; i < sums.size(); i++) out.add(new Tuple2<>(split.good().get(i).id(), new LinkedHashMap<>(sums.get(i))));
            return out.iterator();
        }));
        Map<String, ChannelMeans> merged = SampleOrder.reduce(perSample, (a, b) -> {
            LinkedHashMap<String, ChannelMeans> m = new LinkedHashMap<>(a);
            b.forEach((k, v) -> m.merge(k, v, ChannelMeans::merge));
            return m;
        });
        if (merged == null) throw new io.quantcal.job.data.BadSampleException("bias-correct: no usable calibration samples");
        return merged;
    }
}
