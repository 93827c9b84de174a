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
    /**
     * A model larger than one protobuf message ({@link OnnxModel#parts}): {@link #bytes} is its skeleton, and the
     * tensors held outside it travel in chunks of at most {@link #CHUNK_BYTES}, each tensor at {@link #where}
     * (chunk, offset, length). Empty for other models.
     */
    private final List<Broadcast<byte[]>> chunks;
    private final java.util.Map<String, long[]> where;
    private final String sha256;
    private final String displayName;
    /** quantcal.runtime.max-sessions, applied to the executor's session cache by each task that asks for a session. */
    private final int maxSessions;

    static final int CHUNK_BYTES = 256 << 20;

    /**
     * Models that local-mode tasks take from the driver, by hash: held weakly here and strongly by the driver's
     * BroadcastModel ({@link #held}), so a model stays while a pass holds it and goes with it, released or not.
     */
    private static final java.util.Map<String, java.lang.ref.WeakReference<OnnxModel>> LOCAL =
            new java.util.concurrent.ConcurrentHashMap<>();

    private static volatile boolean shareInLocalMode = true;

    /** Whether local-mode tasks take a big model from the driver (the default) or from its broadcast, as on a cluster (tests). */
    public static void shareInLocalMode(boolean share) {
        shareInLocalMode = share;
    }

    /** Whether tasks take the driver's model itself (local mode, a model of more than 1/16 of the large size). */
    private final boolean local;
    /** The driver's model, for {@link #LOCAL}: not serialized. */
    private final transient OnnxModel held;

    private BroadcastModel(Broadcast<byte[]> bytes, List<Broadcast<byte[]>> chunks, java.util.Map<String, long[]> where,
                           String sha256, String displayName, int maxSessions, OnnxModel held) {
        this.local = held != null;
        this.held = held;
        this.bytes = bytes;
        this.chunks = chunks;
        this.where = where;
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
        scala.reflect.ClassTag<byte[]> tag = scala.reflect.ClassTag$.MODULE$.apply(byte[].class);
        if (spark.sparkContext().isLocal() && shareInLocalMode && model.medium()) {
            // local mode: the tasks run in this JVM and take the driver's model itself; a broadcast would add three
            // copies of a big model (Spark's value, its serialized pieces, the tasks' parse of them)
            String name = displayName(model.source(), label);
            OnnxModel m = name.equals(model.source()) ? model : model.withSource(name);
            LOCAL.put(model.sha256(), new java.lang.ref.WeakReference<>(m));
            return new BroadcastModel(null, List.of(), java.util.Map.of(), model.sha256(), name, maxSessions, m);
        }
        OnnxModel.Parts parts = model.parts();
        Broadcast<byte[]> b = spark.sparkContext().broadcast(parts.skeleton(), tag);
        List<Broadcast<byte[]>> chunks = new java.util.ArrayList<>();
        java.util.Map<String, long[]> where = new java.util.HashMap<>();
        java.io.ByteArrayOutputStream chunk = new java.io.ByteArrayOutputStream();
        for (onnx.Onnx.TensorProto t : parts.outside()) {
            int n = t.getRawData().size();
            if (chunk.size() > 0 && (long) chunk.size() + n > CHUNK_BYTES) {
                chunks.add(spark.sparkContext().broadcast(chunk.toByteArray(), tag));
                chunk.reset();
            }
            where.put(t.getName(), new long[] {chunks.size(), chunk.size(), n});
            try {
                t.getRawData().writeTo(chunk);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        if (chunk.size() > 0) chunks.add(spark.sparkContext().broadcast(chunk.toByteArray(), tag));
        return new BroadcastModel(b, List.copyOf(chunks), where, model.sha256(), displayName(model.source(), label),
                maxSessions, null);
    }

    /**
     * Releases what this copy holds once a pass (or wave) is done with it: the broadcast's executor copies, and the
     * ONNX Runtime sessions of this model in this JVM (all of them in local mode; an executor JVM of a cluster keeps
     * its cached sessions until the bound, quantcal.runtime.max-sessions, closes them for newer ones or it ends).
     */
    public void release() {
        if (bytes != null) bytes.unpersist(false);
        chunks.forEach(c -> c.unpersist(false));
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
        if (local) {
            java.lang.ref.WeakReference<OnnxModel> r = LOCAL.get(sha256);
            OnnxModel m = held != null ? held : r == null ? null : r.get();
            if (m == null) throw new IllegalStateException(displayName + ": the driver no longer holds the model");
            return m;
        }
        if (!chunks.isEmpty()) {
            // the tensors are read where they lie in their chunks, not copied
            java.util.Map<String, org.nd4j.shade.protobuf.ByteString> data = new java.util.HashMap<>();
            for (var e : where.entrySet()) {
                long[] w = e.getValue();
                data.put(e.getKey(), org.nd4j.shade.protobuf.UnsafeByteOperations.unsafeWrap(
                        chunks.get((int) w[0]).value(), (int) w[1], (int) w[2]));
            }
            return OnnxModel.fromParts(displayName, bytes.value(), data);
        }
        return OnnxModel.parse(displayName, bytes.value(), loc -> {
            throw new IllegalStateException(displayName + ": the broadcast model refers to external data " + loc
                    + " (the driver inlines external data before broadcasting)");
        });
    }
}
