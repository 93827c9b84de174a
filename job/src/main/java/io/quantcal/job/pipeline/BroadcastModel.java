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
 */
public final class BroadcastModel implements Serializable {

    private final Broadcast<byte[]> bytes;
    private final String sha256;
    private final String label;

    private BroadcastModel(Broadcast<byte[]> bytes, String sha256, String label) {
        this.bytes = bytes;
        this.sha256 = sha256;
        this.label = label;
    }

    public static BroadcastModel of(SparkSession spark, OnnxModel model, String label) {
        Broadcast<byte[]> b = spark.sparkContext().broadcast(model.toByteArray(),
                scala.reflect.ClassTag$.MODULE$.apply(byte[].class));
        return new BroadcastModel(b, model.sha256(), label);
    }

    /** Inside a task: this executor's runner for the model with these captures. */
    public ModelRunner runner(List<String> captures, RunnerOptions options) {
        return SessionCache.runner(sha256, () -> OnnxModel.parse(label + " " + sha256, bytes.value(), loc -> {
            throw new IllegalStateException("a serialized model refers to external data " + loc);
        }), captures, options);
    }
}
