package io.quantcal.job.pipeline;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.kernels.runtime.SessionCache;
import java.io.Serializable;
import java.util.List;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;

/**
 * A model shipped to executors once (a broadcast of its self-contained bytes) and opened there at most
 * once per executor JVM and capture list (the per-executor session cache), whatever the number of tasks.
 *
 * <p>The bytes travel with the name of the model file they came from ({@link OnnxModel#source}, the job's
 * {@code quantcal.model}) and what this copy is ("qdq model", ...), so that an error an executor raises, ONNX
 * Runtime's included, names the file, not the hash that keys the session cache.
 */
public final class BroadcastModel implements Serializable {

    private final Broadcast<byte[]> bytes;
    private final String sha256;
    private final String displayName;

    private BroadcastModel(Broadcast<byte[]> bytes, String sha256, String displayName) {
        this.bytes = bytes;
        this.sha256 = sha256;
        this.displayName = displayName;
    }

    /** {@code label} says which form of the model this is; "model" is the model file itself. */
    public static BroadcastModel of(SparkSession spark, OnnxModel model, String label) {
        Broadcast<byte[]> b = spark.sparkContext().broadcast(model.toByteArray(),
                scala.reflect.ClassTag$.MODULE$.apply(byte[].class));
        return new BroadcastModel(b, model.sha256(), displayName(model.source(), label));
    }

    /**
     * Releases what this copy holds once a pass (or wave) is done with it: the broadcast's executor copies, and the
     * ONNX Runtime sessions of this model in this JVM (all of them in local mode; an executor JVM of a cluster keeps
     * its cached sessions until it ends).
     */
    public void release() {
        bytes.unpersist(false);
        SessionCache.evict(sha256);
    }

    /** {@code /models/resnet.onnx}, or {@code /models/resnet.onnx (qdq model)} for a form the job derived from it. */
    static String displayName(String source, String label) {
        String file = source == null || source.isBlank() ? "the model" : source;
        return label == null || label.isBlank() || label.equals("model") ? file : file + " (" + label + ")";
    }

    /** What error messages call this model. */
    public String displayName() {
        return displayName;
    }

    /**
     * Inside a task: this executor's runner for the model with the min, max and shape of {@code tensors} reduced in
     * the session ({@link io.quantcal.kernels.calib.StatisticsCapture}).
     */
    public ModelRunner minMaxRunner(List<String> tensors, RunnerOptions options) {
        return minMaxRunner(tensors, List.of(), options);
    }

    /** As {@link #minMaxRunner(List, RunnerOptions)}, also returning the tensors {@code whole} as they are. */
    public ModelRunner minMaxRunner(List<String> tensors, List<String> whole, RunnerOptions options) {
        List<String> captures = new java.util.ArrayList<>(io.quantcal.kernels.calib.StatisticsCapture.outputs(tensors));
        captures.addAll(whole);
        return SessionCache.runner(sha256, () -> io.quantcal.kernels.calib.StatisticsCapture.withStatisticsOutputs(
                OnnxModel.parse(displayName, bytes.value(), loc -> {
                    throw new IllegalStateException(displayName + ": the broadcast model refers to external data " + loc
                            + " (the driver inlines external data before broadcasting)");
                }), tensors), captures, options);
    }

    /** Inside a task: this executor's runner for the model with these captures. */
    public ModelRunner runner(List<String> captures, RunnerOptions options) {
        return SessionCache.runner(sha256, () -> OnnxModel.parse(displayName, bytes.value(), loc -> {
            throw new IllegalStateException(displayName + ": the broadcast model refers to external data " + loc
                    + " (the driver inlines external data before broadcasting)");
        }), captures, options);
    }
}
