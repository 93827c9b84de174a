package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.dfq.AbsorbedBias;
import io.quantcal.kernels.dfq.CrossLayerEqualizer;
import io.quantcal.kernels.dfq.EqualizationOptions;
import io.quantcal.kernels.dfq.Equalized;
import io.quantcal.kernels.dfq.HighBiasAbsorber;
import io.quantcal.kernels.dfq.HighBiasAbsorption;
import io.quantcal.kernels.dfq.PairScales;
import io.quantcal.kernels.dfq.PreActivation;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code equalize} (Nagel et al. 2019, §4.1 and §4.2): cross-layer equalization of consecutive Conv pairs and
 * high-bias absorption, driver side, no data. Runs before {@code calibrate}; the equalized FP32 model is
 * written to the output and the scales and absorbed amounts go to run.json.
 */
public final class EqualizePass implements Pass {

    public static final String EQUALIZED_MODEL = "model_fp32_equalized.onnx";

    @Override
    public String name() {
        return "equalize";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        QuantcalConfig.Dfq dfq = ctx.config().dfq();
        if (state.calibrated()) {
            throw new IllegalStateException("pass equalize changes the weights: put it before calibrate in quantcal.pipeline");
        }
        EqualizationOptions opts = EqualizationOptions.defaults().withMaxIterations(dfq.maxIterations())
                .withTreatRelu6AsRelu(dfq.relu6AsRelu());
        Equalized eq = CrossLayerEqualizer.equalize(state.model(), opts);
        Map<String, PreActivation> pre = eq.result().rescale(state.preActivations());
        var model = eq.model();
        List<Object> absorbed = new ArrayList<>();
        if (dfq.absorbHighBias()) {
            HighBiasAbsorption a = HighBiasAbsorber.absorb(model, pre);
            model = a.model();
            pre = a.preActivations();
            for (AbsorbedBias b : a.absorbed()) {
                absorbed.add(Map.of("conv1", b.conv1(), "conv2", b.conv2(), "amounts", b.amounts()));
            }
        }
        ctx.files().writeModel(ctx.output().resolve(EQUALIZED_MODEL), model);
        Map<String, Object> s = new LinkedHashMap<>();
        List<Object> pairs = new ArrayList<>();
        for (PairScales p : eq.result().pairs()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("conv1", p.conv1());
            m.put("conv2", p.conv2());
            m.put("activation", p.activation());
            m.put("scales", p.scales());
            pairs.add(m);
        }
        s.put("pairs", pairs);
        s.put("iterations", eq.result().iterations());
        s.put("converged", eq.result().converged());
        s.put("relu6_treated_as_relu", eq.result().relu6TreatedAsRelu());
        if (eq.result().relu6TreatedAsRelu()) {
            s.put("note", "ReLU6 is not positively homogeneous; as in the paper it was treated as ReLU, so pairs "
                    + "across a ReLU6 change the FP32 function slightly");
        }
        s.put("high_bias_absorbed", absorbed);
        s.put("equalized_model", ctx.output().finalPath(EQUALIZED_MODEL));
        ctx.out().printf("equalize: %d layer pairs in %d sweeps%s, %d high biases absorbed%n", pairs.size(),
                eq.result().iterations(), eq.result().relu6TreatedAsRelu() ? " (ReLU6 treated as ReLU)" : "", absorbed.size());
        return state.withModel(model, state.foldedBatchNorms()).withPreActivations(pre).withSummary(name(), s);
    }
}
