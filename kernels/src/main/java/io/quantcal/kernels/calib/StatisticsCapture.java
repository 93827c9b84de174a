package io.quantcal.kernels.calib;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.stats.MinMaxStats;
import io.quantcal.kernels.stats.TensorStats;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.GraphProto;
import onnx.Onnx.TensorProto;

/**
 * Min/max of activation tensors reduced inside the ONNX Runtime session. A min/max pass needs two numbers per tensor
 * and batch, not the tensor: returning every captured activation to the JVM and scanning it there costs several times
 * the inference itself at 224×224 (MobileNetV2: 4.3× plain inference). Here each tensor {@code t} gets
 * {@code ReduceMin(t)}, {@code ReduceMax(t)}, {@code ReduceSum(t)} (all axes, keepdims 0: no {@code axes}, so the same
 * nodes are valid at every opset) and {@code Cast(Shape(t), FLOAT)} for the count, as graph outputs; the tensor itself never leaves the
 * session and its buffer is reused by the session's memory planner.
 *
 * <p>Min and max are exact (a reduction picks a value, it does not round). The sum is there to find a NaN: ONNX Runtime's
 * ReduceMin/ReduceMax skip one among finite values, a sum does not. The sums of {@link MinMaxStats} are not measured
 * (a float32 sum of millions of values is not the double sum they promise): they are NaN in the statistics this gives,
 * which no calibrator reads.
 */
public final class StatisticsCapture {

    private StatisticsCapture() {}

    static final String PREFIX = "quantcal.stats/";

    static String min(String t) { return PREFIX + "min/" + t; }

    static String max(String t) { return PREFIX + "max/" + t; }

    static String shape(String t) { return PREFIX + "shape/" + t; }

    static String sum(String t) { return PREFIX + "sum/" + t; }

    /** The graph outputs {@link #withStatisticsOutputs} adds for {@code tensors}: what a runner must capture. */
    public static List<String> outputs(List<String> tensors) {
        List<String> out = new ArrayList<>(4 * tensors.size());
        for (String t : tensors) {
            out.add(min(t));
            out.add(max(t));
            out.add(sum(t));
            out.add(shape(t));
        }
        return out;
    }

    /**
     * {@code model} with the min, max and shape of each of {@code tensors} as float graph outputs after its own.
     *
     * @throws ModelException naming a tensor no node produces and no graph input provides
     */
    public static OnnxModel withStatisticsOutputs(OnnxModel model, List<String> tensors) {
        java.util.Map<String, Integer> ids = new java.util.LinkedHashMap<>();
        for (String t : tensors) {
            if (model.producer(t) == null && !model.isGraphInput(t)) {
                throw new ModelException(model.source() + ": cannot measure tensor " + t
                        + ": no node produces it and it is not a graph input");
            }
            ids.putIfAbsent(t, ids.size());
        }
        // each tensor's reductions right after the node that makes it: ONNX Runtime runs them next and its memory
        // planner can reuse the tensor's buffer as soon as its own readers are done (appended at the end of the
        // graph, they kept every measured tensor of a batch alive to the end: 1.8x slower at batch 32 on MobileNetV2)
        GraphProto.Builder g = model.graph().toBuilder().clearNode();
        for (String t : tensors) if (model.isGraphInput(t)) addStatistics(g, t, ids.get(t));
        for (onnx.Onnx.NodeProto n : model.graph().getNodeList()) {
            g.addNode(n);
            for (String o : n.getOutputList()) if (ids.containsKey(o)) addStatistics(g, o, ids.get(o));
        }
        for (String t : ids.keySet()) {
            g.addOutput(Graphs.valueOfAnyShape(min(t), TensorProto.DataType.FLOAT));
            g.addOutput(Graphs.valueOfAnyShape(max(t), TensorProto.DataType.FLOAT));
            g.addOutput(Graphs.valueOfAnyShape(sum(t), TensorProto.DataType.FLOAT));
            g.addOutput(Graphs.valueOfAnyShape(shape(t), TensorProto.DataType.FLOAT));
        }
        return model.withGraph(g.build());
    }

    private static void addStatistics(GraphProto.Builder g, String t, int k) {
        String id = "quantcal_stats_" + k;
        g.addNode(Graphs.node("ReduceMin", id + "_min", List.of(t), List.of(min(t)), Map.of("keepdims", 0L)));
        g.addNode(Graphs.node("ReduceMax", id + "_max", List.of(t), List.of(max(t)), Map.of("keepdims", 0L)));
        g.addNode(Graphs.node("ReduceSum", id + "_sum", List.of(t), List.of(sum(t)), Map.of("keepdims", 0L)));
        g.addNode(Graphs.node("Shape", id + "_shape", List.of(t), List.of(id + "_dims")));
        g.addNode(Graphs.node("Cast", id + "_cast", List.of(id + "_dims"), List.of(shape(t)),
                Map.of("to", (long) TensorProto.DataType.FLOAT_VALUE)));
    }

    /**
     * The min/max statistics of tensor {@code t} in one batch, from a run of a model made by
     * {@link #withStatisticsOutputs}.
     *
     * @throws IllegalArgumentException naming the tensor when its min or max is NaN or infinite
     */
    public static TensorStats stats(String t, Map<String, FloatTensor> out) {
        FloatTensor lo = out.get(min(t)), hi = out.get(max(t)), total = out.get(sum(t)), dims = out.get(shape(t));
        if (lo == null || hi == null || total == null || dims == null) {
            throw new IllegalStateException("tensor " + t + " was not measured by the runner");
        }
        long count = 1;
        for (float d : dims.data()) count *= (long) d;
        if (count == 0) return new TensorStats(t, MinMaxStats.empty(), null);
        double a = lo.data()[0], b = hi.data()[0];
        // ONNX Runtime's ReduceMin/ReduceMax pass over a NaN among finite values; the sum carries it
        if (!Double.isFinite(a) || !Double.isFinite(b) || Float.isNaN(total.data()[0])) {
            throw new IllegalArgumentException("tensor " + t + ": a batch holds a value that is not finite (NaN or"
                    + " infinite; range [" + a + ", " + b + "]); calibration statistics need finite values");
        }
        return new TensorStats(t, new MinMaxStats(count, a, b, Double.NaN, Double.NaN), null);
    }
}
