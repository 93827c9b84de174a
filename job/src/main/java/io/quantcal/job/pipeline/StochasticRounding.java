package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.pipeline.LayerReconstruction.LayerTask;
import io.quantcal.kernels.adaround.StochasticDraws;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;

/**
 * {@code quantization.weights.rounding = stochastic}, the last step of calibrate: every layer's weights rounded
 * stochastically ({@link StochasticDraws}), {@code rounding-draws} seeded draws per layer as Spark tasks on the
 * layer-reconstruction capture ({@link LayerReconstruction}, FP inputs), the draw with the lowest layer-output MSE
 * kept (ties: the lower draw number). Each draw's seed is fixed by the rounding seed, the layer's index and the draw
 * number, and each problem's columns by the sample ids, so the codes do not depend on the partitioning.
 */
final class StochasticRounding {

    /** Columns per MSE evaluation batch. */
    static final int BATCH_COLUMNS = 2048;

    private StochasticRounding() {}

    static PipelineState apply(RunContext ctx, PipelineState state) {
        QuantcalConfig.Rounding r = ctx.config().weights().rounding();
        OnnxModel model = state.model();
        List<QuantizableNode> nodes = state.searchableNodes(); // the others keep nearest rounding
        state.printKept(ctx.out(), "calibrate: stochastic rounding", "rounded to nearest (no layer forward for this op)");
        ctx.spark().sparkContext().setJobDescription("calibrate: stochastic rounding, choose the first " + r.samples()
                + " calibration samples");
        JavaRDD<Sample> samples = LayerReconstruction.selectSamples(ctx, model, r.samples(), "stochastic rounding");
        List<LayerTask> tasks = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            QuantizableNode n = nodes.get(i);
            tasks.add(new LayerTask(i, n, model.initializerFloats(n.weight()),
                    n.bias() == null ? null : model.initializerFloats(n.bias()),
                    state.quant().get(n.name() + "/weight").params(), null, null));
        }
        long seed = r.seed();
        List<LayerReconstruction.Solved<StochasticDraws.Draw>> solved;
        BroadcastModel fp = null;
        try {
            ctx.spark().sparkContext().setJobDescription("calibrate: stochastic rounding, " + r.draws() + " draws of "
                    + nodes.size() + " layers, one task each");
            fp = BroadcastModel.of(ctx, model, "model");
            solved = LayerReconstruction.solve(ctx, samples, model, fp, null, tasks, 0,
                    new LayerReconstruction.Capture("stochastic-rounding", r.samples(), seed, true, BATCH_COLUMNS, r.draws()),
                    (t, draw, p, threads) -> StochasticDraws.draw(p, t.weight(), t.params(), StochasticDraws.seed(seed, t.index(), draw),
                            BATCH_COLUMNS));
        } finally {
            samples.unpersist(false);
            if (fp != null) fp.release();
        }
        // in (layer, draw) order: the first lowest MSE wins
        Map<Integer, LayerReconstruction.Solved<StochasticDraws.Draw>> best = new LinkedHashMap<>();
        Map<Integer, List<Double>> all = new LinkedHashMap<>();
        for (LayerReconstruction.Solved<StochasticDraws.Draw> s : solved) {
            all.computeIfAbsent(s.index(), k -> new ArrayList<>()).add(s.result().mse());
            var b = best.get(s.index());
            if (b == null || s.result().mse() < b.result().mse()) best.put(s.index(), s);
        }
        Map<String, TensorQuant> quant = new LinkedHashMap<>(state.quant());
        Map<String, int[]> codes = new LinkedHashMap<>(state.integerWeights());
        Map<String, Object> layers = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            QuantizableNode n = nodes.get(i);
            StochasticDraws.Draw d = best.get(i).result();
            TensorQuant w = quant.get(n.name() + "/weight");
            quant.put(n.name() + "/weight", new TensorQuant(w.tensor(), w.node(), w.opType(), w.role(), w.params(),
                    "stochastic", "mse", d.mse(), d.mseNearest()));
            codes.put(n.weight(), d.codes());
            Map<String, Object> l = new LinkedHashMap<>();
            l.put("mse_nearest", d.mseNearest());
            l.put("mse_best", d.mse());
            l.put("best_draw", best.get(i).copy());
            l.put("mse_draws", all.get(i));
            layers.put(n.name(), l);
            ctx.out().printf("  %-24s mse nearest %.4g, stochastic best of %d %.4g (draw %d)%n", n.name(), d.mseNearest(),
                    r.draws(), d.mse(), best.get(i).copy());
        }
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("draws", r.draws());
        s.put("samples", r.samples());
        s.put("seed", seed);
        s.put("layers", layers);
        return state.withQuant(quant).withIntegerWeights(codes).withSummary("stochastic_rounding", s);
    }
}
