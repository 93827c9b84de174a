package io.quantcal.kernels.runtime;

import io.quantcal.kernels.onnx.OnnxModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
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
 *
 * <p>It also knows every session open in this JVM, cached or not, so that {@link #shutdown} can close them
 * all before the JVM exits. ONNX Runtime's Java binding releases its native environment from a JVM shutdown
 * hook; a Spark task still running a session then (the other tasks of a job that just failed keep running)
 * logs through the released environment and the JVM dies by SIGSEGV instead of exiting with its code. The
 * command line calls {@link #shutdown} before {@code System.exit}; a shutdown hook of ours does the same as a
 * fallback for other exits (an executor JVM, a signal), though hooks run in no set order.
 */
public final class SessionCache {

    /** What identifies a session: capture order matters, since it is the order of the returned map. */
    private record Key(String modelSha256, List<String> captures, RunnerOptions options) {}

    /** How long {@link #shutdown} waits for a run in flight on a session before leaving that session open. */
    static final long SHUTDOWN_WAIT_SECONDS = 60;

    private static final ConcurrentHashMap<Key, ModelRunner> RUNNERS = new ConcurrentHashMap<>();
    /** Every open session of this JVM, cached or not. */
    private static final Set<ModelRunner> OPEN = ConcurrentHashMap.newKeySet();
    /** Read: a session being opened; write: {@link #shutdown} deciding that no more will be. */
    private static final ReentrantReadWriteLock LIFECYCLE = new ReentrantReadWriteLock();
    private static volatile boolean shutDown;

    static {
        try {
            Runtime.getRuntime().addShutdownHook(new Thread(SessionCache::shutdown, "quantcal-close-onnxruntime-sessions"));
        } catch (IllegalStateException alreadyExiting) {
            shutDown = true; // the JVM is exiting already: open nothing
        }
    }

    private SessionCache() {}

    /** The shared runner for {@code model}, opened on first use. */
    public static ModelRunner runner(OnnxModel model, List<String> captureTensors, RunnerOptions options) {
        return runner(model.sha256(), () -> model, captureTensors, options);
    }

    /**
     * The shared runner for the model with hash {@code modelSha256}; {@code model} is only called when
     * no session exists yet, so that a task holding the model as bytes parses it once per executor. The
     * caller vouches that the supplied model has that hash.
     *
     * @throws IllegalStateException once {@link #shutdown} has run
     */
    public static ModelRunner runner(String modelSha256, Supplier<OnnxModel> model, List<String> captureTensors,
                                     RunnerOptions options) {
        Objects.requireNonNull(modelSha256, "modelSha256");
        Key key = new Key(modelSha256, List.copyOf(captureTensors), options);
        ModelRunner r = RUNNERS.get(key);
        if (r != null && !r.isClosed()) return r;
        if (r != null) RUNNERS.remove(key, r); // closed by closeAll/shutdown: open a new one (or be refused)
        // computeIfAbsent: two tasks asking at once open one session, not two
        return RUNNERS.computeIfAbsent(key, k -> ModelRunner.open(model.get(), k.captures(), k.options(), true));
    }

    /** Number of open sessions in the cache. */
    public static int size() {
        return RUNNERS.size();
    }

    /** Number of open sessions in this JVM, cached or not. */
    public static int openSessions() {
        return OPEN.size();
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

    /** Closes and forgets every cached session. */
    public static void clear() {
        for (Key k : new ArrayList<>(RUNNERS.keySet())) {
            ModelRunner r = RUNNERS.remove(k);
            if (r != null) r.closeNow();
        }
    }

    /**
     * Closes every ONNX Runtime session of this JVM, cached or not, each once its runs in flight are done, and
     * refuses to open any more: what must happen before the JVM exits. Safe to call from any thread, any number
     * of times (later calls find nothing left to close); a session whose run does not finish within
     * {@value #SHUTDOWN_WAIT_SECONDS} s is left open rather than hang the exit.
     */
    public static void shutdown() {
        boolean locked = false;
        try {
            // waits for sessions being opened right now, so that none appears after the snapshot below
            locked = LIFECYCLE.writeLock().tryLock(SHUTDOWN_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            shutDown = true;
        } finally {
            if (locked) LIFECYCLE.writeLock().unlock();
        }
        RUNNERS.clear();
        closeAll(SHUTDOWN_WAIT_SECONDS);
    }

    /** True once {@link #shutdown} has run: no session opens any more. */
    public static boolean isShutDown() {
        return shutDown;
    }

    /**
     * Closes every open session of this JVM, cached or not, without refusing later ones (tests; {@link #shutdown}
     * is what a program calls). Returns how many sessions it closed.
     */
    static int closeAll(long waitSeconds) {
        int closed = 0;
        for (ModelRunner r : new ArrayList<>(OPEN)) {
            if (r.closeNow(waitSeconds)) {
                closed++;
            } else {
                System.err.println("quantcal: warning: " + r.source() + ": an ONNX Runtime run still in flight after "
                        + waitSeconds + " s; its session is left open");
            }
        }
        RUNNERS.values().removeIf(ModelRunner::isClosed);
        return closed;
    }

    /**
     * Opens a session through {@code open} and records it as open, unless {@link #shutdown} has run (then
     * nothing is opened). Called by {@link ModelRunner} for every session, cached or not.
     */
    static ModelRunner opened(String source, Supplier<ModelRunner> open) {
        LIFECYCLE.readLock().lock();
        try {
            if (shutDown) {
                throw new IllegalStateException(source + ": ONNX Runtime sessions are closed: the JVM is shutting down");
            }
            ModelRunner r = open.get();
            OPEN.add(r);
            return r;
        } finally {
            LIFECYCLE.readLock().unlock();
        }
    }

    /** Called by {@link ModelRunner} once its session is closed. */
    static void closed(ModelRunner r) {
        OPEN.remove(r);
    }
}
