package io.quantcal.kernels.runtime;

import io.quantcal.kernels.onnx.OnnxModel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * The per-executor session cache: one {@link ModelRunner} per (model SHA-256, capture list, options)
 * per JVM, so that the Spark tasks an executor runs one after another (or side by side) reuse one ONNX
 * Runtime session instead of loading the model for every partition. This is the only static mutable
 * state in quantcal (DESIGN.md).
 *
 * <p>Thread-safe. A caller takes a {@link Lease} on a session ({@link #lease}) for as long as it runs it (a
 * Spark task: the whole task) and releases it when done, in a {@code finally} (try-with-resources). Runners are
 * shared between the leases of one key: their {@code close()} does nothing, the cache closes them.
 *
 * <p><b>Bounded.</b> Each session holds a copy of the weights and its own arena, so the cache keeps at most
 * {@link #maxSessions()} sessions open ({@code quantcal.runtime.max-sessions}, set per JVM by the task that asks
 * for a session): opening one more first closes the least recently used sessions that nobody holds a lease on. A
 * leased session is never closed by the bound, so a task can always finish its runs; when every cached session is
 * leased, the new one opens anyway, beyond the bound, and the cache shrinks back to the bound as leases are
 * released. Nothing waits for a lease, so the bound cannot deadlock tasks that hold one session while asking for
 * another. A pass that is done with a model still {@link #evict}s its sessions (a leased one is closed when its
 * last lease is released). {@link #peak} tells the most sessions the cache held open at once.
 *
 * <p>It also knows every session open in this JVM, cached or not, so that {@link #shutdown} can close them
 * all before the JVM exits. ONNX Runtime's Java binding releases its native environment from a JVM shutdown
 * hook; a Spark task still running a session then (the other tasks of a job that just failed keep running)
 * logs through the released environment and the JVM dies by SIGSEGV instead of exiting with its code. The
 * command line calls {@link #shutdown} before {@code System.exit}; a shutdown hook of ours does the same as a
 * fallback for other exits (an executor JVM, a signal), though hooks run in no set order. Shutdown closes leased
 * sessions too (each after its run in flight); their holders' next run is refused.
 */
public final class SessionCache {

    /** What identifies a session: capture order matters, since it is the order of the returned map. */
    private record Key(String modelSha256, List<String> captures, RunnerOptions options) {}

    /** A cached session and how many leases hold it. Guarded by {@link #LOCK}. */
    private static final class Entry {
        final Key key;
        /** Null while the session is being opened. */
        ModelRunner runner;
        int leases;
        /** No longer in the cache; closed when its last lease is released. */
        boolean evicted;

        Entry(Key key) {
            this.key = key;
        }
    }

    /**
     * The bound when none is configured: a task of a sequential EasyQuant, AdaRound or learn wave holds two
     * sessions at once (the FP model capturing its targets, the partly quantized model capturing its inputs), as
     * evaluate does (FP32 and QDQ); four keeps that pair and the pair before it, so that a session asked for again
     * soon (the FP model with the same captures) is not reopened, while an executor holds at most four copies of
     * the weights whatever the number of waves.
     */
    public static final int DEFAULT_MAX_SESSIONS = 4;

    /** How long {@link #shutdown} waits for a run in flight on a session before leaving that session open. */
    static final long SHUTDOWN_WAIT_SECONDS = 60;

    private static final Object LOCK = new Object();
    /** Access order: the least recently leased first. */
    private static final LinkedHashMap<Key, Entry> ENTRIES = new LinkedHashMap<>(16, 0.75f, true);
    /** Sessions evicted while leased, not yet closed (they still count against the bound). */
    private static int evictedLeased;
    private static int maxSessions = DEFAULT_MAX_SESSIONS;
    private static int peak;
    private static long lruClosed;
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

    /**
     * A hold on a cached session: while it is not closed, the cache's bound does not close the session. Close it
     * (once; later calls do nothing) when the runs are done. Not for sharing between threads that close it
     * separately: each task takes its own.
     */
    public static final class Lease implements AutoCloseable {
        private final Entry entry;
        private final ModelRunner runner;
        private final AtomicBoolean released = new AtomicBoolean();

        private Lease(Entry entry) {
            this.entry = entry;
            this.runner = entry.runner;
        }

        /** The shared runner; do not use it after {@link #close}. */
        public ModelRunner runner() {
            if (released.get()) throw new IllegalStateException(runner.source() + ": the session lease was released");
            return runner;
        }

        /** Releases the hold: the session becomes a candidate for the bound's eviction, or closes if evicted. */
        @Override
        public void close() {
            if (!released.compareAndSet(false, true)) return;
            List<ModelRunner> close = new ArrayList<>();
            synchronized (LOCK) {
                entry.leases--;
                if (entry.evicted) {
                    if (entry.leases == 0) {
                        evictedLeased--;
                        close.add(entry.runner);
                    }
                } else {
                    close.addAll(idleBeyondBound());
                }
            }
            closeAll(close);
        }
    }

    /** A lease on the shared runner for {@code model}, opened on first use. */
    public static Lease lease(OnnxModel model, List<String> captureTensors, RunnerOptions options) {
        return lease(model.sha256(), () -> model, captureTensors, options);
    }

    /**
     * A lease on the shared runner for the model with hash {@code modelSha256}; {@code model} is only called when
     * no session exists yet, so that a task holding the model as bytes parses it once per executor. The caller
     * vouches that the supplied model has that hash. Two callers asking at once for a key with no session open one
     * session: the second waits for the first's.
     *
     * @throws IllegalStateException once {@link #shutdown} has run
     */
    public static Lease lease(String modelSha256, Supplier<OnnxModel> model, List<String> captureTensors,
                              RunnerOptions options) {
        Objects.requireNonNull(modelSha256, "modelSha256");
        Key key = new Key(modelSha256, List.copyOf(captureTensors), options);
        Entry mine;
        List<ModelRunner> victims;
        synchronized (LOCK) {
            while (true) {
                Entry e = ENTRIES.get(key); // access order: now the most recently used
                if (e == null) break;
                if (e.runner == null) { // another thread is opening it
                    try {
                        LOCK.wait();
                    } catch (InterruptedException interrupted) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException(modelSha256 + ": interrupted while another task opened its session");
                    }
                    continue;
                }
                if (!e.runner.isClosed()) {
                    e.leases++;
                    return new Lease(e);
                }
                ENTRIES.remove(key); // closed by closeAll/shutdown: open a new one (or be refused)
                break;
            }
            mine = new Entry(key);
            mine.leases = 1;
            ENTRIES.put(key, mine);
            // room first, so that the new session's weights and arena never come on top of a full cache
            victims = idleBeyondBound();
            peak = Math.max(peak, live());
        }
        closeAll(victims);
        ModelRunner r;
        try {
            r = ModelRunner.open(model.get(), key.captures(), key.options(), true);
        } catch (RuntimeException | Error e) {
            synchronized (LOCK) {
                if (mine.evicted) evictedLeased--;
                else ENTRIES.remove(key, mine);
                LOCK.notifyAll();
            }
            throw e;
        }
        synchronized (LOCK) {
            mine.runner = r;
            LOCK.notifyAll();
        }
        return new Lease(mine);
    }

    /** Cached sessions open or opening, including evicted ones a lease still holds. Under {@link #LOCK}. */
    private static int live() {
        return ENTRIES.size() + evictedLeased;
    }

    /**
     * Takes the least recently used sessions nobody leases out of the cache until it is within the bound (or
     * only leased sessions are left); returns them, for the caller to close outside the lock. Under {@link #LOCK}.
     */
    private static List<ModelRunner> idleBeyondBound() {
        List<ModelRunner> out = new ArrayList<>();
        Iterator<Entry> it = ENTRIES.values().iterator();
        while (live() > maxSessions && it.hasNext()) {
            Entry e = it.next();
            if (e.leases > 0 || e.runner == null) continue;
            it.remove();
            e.evicted = true;
            out.add(e.runner);
            lruClosed++;
        }
        return out;
    }

    private static void closeAll(List<ModelRunner> runners) {
        for (ModelRunner r : runners) if (r != null) r.closeNow();
    }

    /**
     * At most {@code sessions} cached sessions open in this JVM (quantcal.runtime.max-sessions); a task sets it
     * before asking for a session. Lowering it closes idle sessions beyond the new bound.
     */
    public static void maxSessions(int sessions) {
        if (sessions < 1) {
            throw new IllegalArgumentException("quantcal.runtime.max-sessions must be >= 1, got " + sessions);
        }
        List<ModelRunner> close;
        synchronized (LOCK) {
            if (maxSessions == sessions) return;
            maxSessions = sessions;
            close = idleBeyondBound();
        }
        closeAll(close);
    }

    /** The bound in force in this JVM. */
    public static int maxSessions() {
        synchronized (LOCK) {
            return maxSessions;
        }
    }

    /** Number of sessions in the cache (open, or being opened). */
    public static int size() {
        synchronized (LOCK) {
            return ENTRIES.size();
        }
    }

    /** Number of leases held on cached sessions. */
    public static int leases() {
        synchronized (LOCK) {
            int n = 0;
            for (Entry e : ENTRIES.values()) n += e.leases;
            return n;
        }
    }

    /**
     * The most cached sessions open at once (evicted but still leased ones included) since the last
     * {@link #resetPeak}; above {@link #maxSessions()} only when every cached session was leased.
     */
    public static int peak() {
        synchronized (LOCK) {
            return peak;
        }
    }

    /** Starts a new {@link #peak} measurement from the sessions open now. */
    public static void resetPeak() {
        synchronized (LOCK) {
            peak = live();
        }
    }

    /** How many sessions the bound has closed (least recently used first) since this JVM started. */
    public static long boundEvictions() {
        synchronized (LOCK) {
            return lruClosed;
        }
    }

    /** Number of open sessions in this JVM, cached or not. */
    public static int openSessions() {
        return OPEN.size();
    }

    /**
     * Forgets every session of the model with this hash and closes it: now if nobody leases it (after runs in
     * flight, if any), else when its last lease is released.
     */
    public static void evict(String modelSha256) {
        evictWhere(k -> k.modelSha256().equals(modelSha256));
    }

    /** Forgets every cached session and closes it as {@link #evict} does. */
    public static void clear() {
        evictWhere(k -> true);
    }

    private static void evictWhere(java.util.function.Predicate<Key> which) {
        List<ModelRunner> close = new ArrayList<>();
        synchronized (LOCK) {
            Iterator<Entry> it = ENTRIES.values().iterator();
            while (it.hasNext()) {
                Entry e = it.next();
                if (!which.test(e.key)) continue;
                it.remove();
                e.evicted = true;
                if (e.leases == 0) close.add(e.runner);
                else evictedLeased++;
            }
        }
        closeAll(close);
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
        synchronized (LOCK) {
            for (Entry e : ENTRIES.values()) {
                e.evicted = true;
                if (e.leases > 0) evictedLeased++;
            }
            ENTRIES.clear();
        }
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
        synchronized (LOCK) {
            Iterator<Entry> it = ENTRIES.values().iterator();
            while (it.hasNext()) {
                Entry e = it.next();
                if (e.runner == null || !e.runner.isClosed()) continue;
                it.remove();
                e.evicted = true;
                if (e.leases > 0) evictedLeased++;
            }
        }
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
