package io.quantcal.job.pipeline;

import io.quantcal.kernels.onnx.OnnxModel;
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
    /** quantcal.runtime.max-sessions, applied to the executor's session cache by each task that asks for a session. */
    private final int maxSessions;

    private BroadcastModel(Broadcast<byte[]> bytes, String sha256, String displayName, int maxSessions) {
        this.bytes = bytes;
        this.sha256 = sha256;
        this.displayName = displayName;
        this.maxSessions = maxSessions;
    }

    /** {@code label} says which form of the model this is; "model" is the model file itself. */
    public static BroadcastModel of(RunContext ctx, OnnxModel model, String label) {
        return of(ctx.spark(), model, label, ctx.config().maxSessions());
    }

    /** As {@link #of(RunContext, OnnxModel, String)}; {@code maxSessions} is quantcal.runtime.max-sessions. */
    public static BroadcastModel of(SparkSession spark, OnnxModel model, String label, int maxSessions) {
        Broadcast<byte[]> b = spark.sparkContext().broadcast(model.toByteArray(),
                scala.reflect.ClassTag$.MODULE$.apply(byte[].class));
        return new BroadcastModel(b, model.sha256(), displayName(model.source(), label), maxSessions);
    }

    /**
     * Releases what this copy holds once a pass (or wave) is done with it: the broadcast's executor copies, and the
     * ONNX Runtime sessions of this model in this JVM (all of them in local mode; an executor JVM of a cluster keeps
     * its cached sessions until the bound, quantcal.runtime.max-sessions, closes them for newer ones or it ends).
     */
    public void release() {
        bytes.unpersist(false);
        SessionCache.evict(sha256);
    }

    /**
     * Closes this model's ONNX Runtime sessions in this JVM (every task's in local mode; on a cluster each executor's
     * bound closes them for newer ones), keeping the broadcast for a later wave.
     */
    public void closeSessions() {
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

    /** Inside a task: a lease on this executor's runner for the model with these captures (release it when done). */
    public SessionCache.Lease lease(List<String> captures, RunnerOptions options) {
        SessionCache.maxSessions(maxSessions);
        return SessionCache.lease(sha256, this::parse, captures, options);
    }

    private OnnxModel parse() {
        return OnnxModel.parse(displayName, bytes.value(), loc -> {
            throw new IllegalStateException(displayName + ": the broadcast model refers to external data " + loc
                    + " (the driver inlines external data before broadcasting)");
        });
    }
}
