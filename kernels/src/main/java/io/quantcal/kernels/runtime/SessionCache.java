package io.quantcal.kernels.runtime;

import io.quantcal.kernels.onnx.OnnxModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The per-executor session cache: one {@link ModelRunner} per (model SHA-256, capture list, options)
 * per JVM, so that the Spark tasks an executor runs one after another (or side by side) reuse one ONNX
 * Runtime session instead of loading the model for every partition. This is the only static mutable
 * state in quantcal (DESIGN.md).
 *
 * <p>Thread-safe. Runners from the cache are shared: callers must not expect {@code close()} to do
 * anything (it is a no-op for them); the cache closes a runner when it is evicted, after the runs in
 * flight on it finish. The cache is not bounded (each session holds a copy of the weights): a pass that
 * is done with a capture list should {@link #evict} its model's sessions.
 */
public final class SessionCache {

    /** What identifies a session: capture order matters, since it is the order of the returned map. */
    private record Key(String modelSha256, List<String> captures, RunnerOptions options) {}

    private static final ConcurrentHashMap<Key, ModelRunner> RUNNERS = new ConcurrentHashMap<>();

    private SessionCache() {}

    /** The shared runner for {@code model}, opened on first use. */
    public static ModelRunner runner(OnnxModel model, List<String> captureTensors, RunnerOptions options) {
        return runner(model.sha256(), () -> model, captureTensors, options);
    }

    /**
     * The shared runner for the model with hash {@code modelSha256}; {@code model} is only called when
     * no session exists yet, so that a task holding the model as bytes parses it once per executor. The
     * caller vouches that the supplied model has that hash.
     */
    public static ModelRunner runner(String modelSha256, Supplier<OnnxModel> model, List<String> captureTensors,
                                     RunnerOptions options) {
        Objects.requireNonNull(modelSha256, "modelSha256");
        Key key = new Key(modelSha256, List.copyOf(captureTensors), options);
        ModelRunner r = RUNNERS.get(key);
        if (r != null) return r;
        // computeIfAbsent: two tasks asking at once open one session, not two
        return RUNNERS.computeIfAbsent(key, k -> ModelRunner.open(model.get(), k.captures(), k.options(), true));
    }

    /** Number of open sessions. */
    public static int size() {
        return RUNNERS.size();
    }

    /** Closes and forgets every session of the model with this hash. */
    public static void evict(String modelSha256) {
        List<Key> keys = new ArrayList<>();
        for (Key k : RUNNERS.keySet()) if (k.modelSha256().equals(modelSha256)) keys.add(k);
        for (Key k : keys) {
            ModelRunner r = RUNNERS.remove(k);
            if (r != null) r.closeNow();
        }
    }

    /** Closes and forgets every session. */
    public static void clear() {
        for (Key k : new ArrayList<>(RUNNERS.keySet())) {
            ModelRunner r = RUNNERS.remove(k);
            if (r != null) r.closeNow();
        }
    }
}
