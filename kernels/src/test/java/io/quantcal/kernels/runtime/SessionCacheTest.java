package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class SessionCacheTest {

    private static final FloatTensor X = FloatTensor.of("x", new float[] {1, -2, 3, -4}, 1, 4);
    private static final RunnerOptions ONE = RunnerOptions.singleThreaded();

    private static OnnxModel model(long seed) {
        TestModels.Builder b = new TestModels.Builder(seed);
        b.gemm("fc", "x", "h", 4, 3, true, true).relu("relu", "h", "y");
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4)), List.of(Graphs.floatValue("y", -1, 3)));
    }

    private static float[] run(ModelRunner r) {
        return r.run(Map.of("x", X)).get("y").data();
    }

    @BeforeEach
    void start() {
        SessionCache.clear(); // what earlier tests of this JVM left
        SessionCache.maxSessions(SessionCache.DEFAULT_MAX_SESSIONS);
        SessionCache.resetPeak();
    }

    @AfterEach
    void clear() {
        SessionCache.clear();
        SessionCache.maxSessions(SessionCache.DEFAULT_MAX_SESSIONS);
    }

    @Test
    void oneSessionPerModelCapturesAndOptions() {
        OnnxModel m = model(1);
        OnnxModel copy = OnnxModel.parse("elsewhere.onnx", m.toByteArray(), ExternalDataResolver.none());
        try (var a = SessionCache.lease(m, List.of("h"), ONE);
             var same = SessionCache.lease(copy, List.of("h"), ONE); // a parsed copy of the same bytes: same session
             var noCaptures = SessionCache.lease(m, List.of(), ONE);
             var twoThreads = SessionCache.lease(m, List.of("h"), new RunnerOptions(2, 1));
             var other = SessionCache.lease(model(2), List.of("h"), ONE)) {
            assertSame(a.runner(), same.runner());
            assertNotSame(a.runner(), noCaptures.runner());
            assertNotSame(a.runner(), twoThreads.runner());
            assertNotSame(a.runner(), other.runner());
            assertEquals(4, SessionCache.size());
            assertEquals(5, SessionCache.leases());
        }
        assertEquals(0, SessionCache.leases());
        assertEquals(4, SessionCache.size(), "within the bound of 4: released sessions stay cached");
    }

    @Test
    void sharedRunnersIgnoreCloseAndAreClosedByEviction() {
        OnnxModel m = model(1);
        ModelRunner r;
        try (var lease = SessionCache.lease(m, List.of(), ONE)) {
            r = lease.runner();
            r.close();
            assertEquals(3, run(r).length);
        }
        SessionCache.evict(m.sha256());
        assertEquals(0, SessionCache.size());
        assertThrows(IllegalStateException.class, () -> run(r));
    }

    @Test
    void evictingALeasedSessionClosesItWhenTheLeaseIsReleased() {
        OnnxModel m = model(1);
        SessionCache.Lease lease = SessionCache.lease(m, List.of(), ONE);
        ModelRunner r = lease.runner();
        SessionCache.evict(m.sha256()); // the pass ends while a task (of a failed job, say) still holds it
        assertEquals(0, SessionCache.size());
        assertFalse(r.isClosed());
        assertEquals(3, run(r).length, "the holder finishes its runs");
        lease.close();
        assertTrue(r.isClosed());
        lease.close(); // twice: nothing more
        assertThrows(IllegalStateException.class, lease::runner);
    }

    @Test
    void sequentialRunsOverMoreKeysThanTheBoundKeepAtMostTheBoundOpen() {
        SessionCache.maxSessions(2);
        int before = SessionCache.openSessions();
        long evictions = SessionCache.boundEvictions();
        int maxSize = 0;
        for (int k = 1; k <= 6; k++) {
            try (var l = SessionCache.lease(model(k), List.of("h"), ONE)) {
                assertEquals(3, run(l.runner()).length);
                maxSize = Math.max(maxSize, SessionCache.size());
            }
            maxSize = Math.max(maxSize, SessionCache.size());
            assertTrue(SessionCache.openSessions() - before <= 2, "open sessions " + (SessionCache.openSessions() - before));
        }
        assertEquals(2, maxSize);
        assertEquals(2, SessionCache.peak());
        assertEquals(2, SessionCache.size());
        assertEquals(4, SessionCache.boundEvictions() - evictions, "six keys through a bound of two close four");
        assertEquals(before + 2, SessionCache.openSessions());
    }

    @Test
    void theLeastRecentlyUsedSessionIsClosedFirst() {
        SessionCache.maxSessions(2);
        OnnxModel a = model(1), b = model(2), c = model(3);
        ModelRunner ra, rb;
        try (var l = SessionCache.lease(a, List.of(), ONE)) {
            ra = l.runner();
        }
        try (var l = SessionCache.lease(b, List.of(), ONE)) {
            rb = l.runner();
        }
        try (var l = SessionCache.lease(a, List.of(), ONE)) { // a used again: b is now the least recent
            assertSame(ra, l.runner());
        }
        try (var l = SessionCache.lease(c, List.of(), ONE)) {
            assertEquals(3, run(l.runner()).length);
        }
        assertTrue(rb.isClosed(), "b, the least recently used, is closed");
        assertFalse(ra.isClosed());
        assertEquals(2, SessionCache.size());
        try (var l = SessionCache.lease(b, List.of(), ONE)) { // b again: a new session, a (now the LRU) goes
            assertNotSame(rb, l.runner());
        }
        assertTrue(ra.isClosed());
    }

    @Test
    void aLeasedSessionIsNotClosedWhileItsTaskRunsAndTheBoundIsExceededMeanwhile() throws Exception {
        SessionCache.maxSessions(1);
        OnnxModel a = model(1), b = model(2), c = model(3);
        CountDownLatch leased = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<ModelRunner> task = pool.submit(() -> {
                try (var l = SessionCache.lease(a, List.of(), ONE)) {
                    assertEquals(3, run(l.runner()).length);
                    leased.countDown();
                    assertTrue(go.await(30, TimeUnit.SECONDS));
                    // between its runs, another task opened and released a session: this one is still open
                    assertEquals(3, run(l.runner()).length);
                    return l.runner();
                }
            });
            assertTrue(leased.await(30, TimeUnit.SECONDS));
            ModelRunner rb;
            try (var l = SessionCache.lease(b, List.of(), ONE)) {
                rb = l.runner();
                // every cached session held: the second opens beyond the bound instead of waiting
                assertEquals(2, SessionCache.size());
                assertEquals(2, SessionCache.peak());
                assertEquals(3, run(rb).length);
            }
            // back to the bound: the only idle session (b) is closed, a is held
            assertTrue(rb.isClosed());
            assertEquals(1, SessionCache.size());
            go.countDown();
            ModelRunner ra = task.get(30, TimeUnit.SECONDS);
            assertFalse(ra.isClosed(), "released within the bound: kept for the next task");
            try (var l = SessionCache.lease(c, List.of(), ONE)) {
                assertEquals(3, run(l.runner()).length);
            }
            assertTrue(ra.isClosed(), "idle now, so the bound closes it for the next key");
            assertEquals(1, SessionCache.size());
            assertEquals(2, SessionCache.peak());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void tasksHoldingTwoSessionsEachNeverDeadlockOnASmallBound() throws Exception {
        SessionCache.maxSessions(1);
        int before = SessionCache.openSessions();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> tasks = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                long fp = 10 + t % 3, q = 20 + t % 4;
                tasks.add(pool.submit(() -> {
                    int runs = 0;
                    for (int i = 0; i < 5; i++) {
                        try (var f = SessionCache.lease(model(fp), List.of("h"), ONE);
                             var x = SessionCache.lease(model(q), List.of(), ONE)) {
                            runs += run(f.runner()).length + run(x.runner()).length;
                        }
                    }
                    return runs;
                }));
            }
            for (Future<Integer> f : tasks) assertEquals(5 * 6, f.get(60, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
        assertEquals(0, SessionCache.leases());
        assertEquals(1, SessionCache.size(), "back to the bound once nobody holds a session");
        assertEquals(before + 1, SessionCache.openSessions());
        assertTrue(SessionCache.peak() <= 8, "at most the sessions held at once plus one: " + SessionCache.peak());
    }

    @Test
    void concurrentTasksShareOneSessionAndTheModelIsParsedOnce() throws Exception {
        OnnxModel m = model(3);
        byte[] bytes = m.toByteArray();
        String sha = m.sha256();
        AtomicInteger parses = new AtomicInteger();
        CountDownLatch all = new CountDownLatch(8);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<float[]>> results = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                results.add(pool.submit(() -> {
                    all.countDown();
                    assertTrue(all.await(30, TimeUnit.SECONDS)); // all ask at once
                    try (var l = SessionCache.lease(sha, () -> {
                        parses.incrementAndGet();
                        try {
                            Thread.sleep(50); // a slow open: the others arrive while it is under way
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        return OnnxModel.parse("task.onnx", bytes, ExternalDataResolver.none());
                    }, List.of("h"), ONE)) {
                        return run(l.runner());
                    }
                }));
            }
            float[] first = results.get(0).get(30, TimeUnit.SECONDS);
            for (Future<float[]> f : results) assertArrayEquals(first, f.get(30, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
        assertEquals(1, parses.get());
        assertEquals(1, SessionCache.size());
        assertEquals(1, SessionCache.peak());
        assertEquals(0, SessionCache.leases());
    }

    @Test
    void aFailedOpenLeavesNothingBehind() {
        int before = SessionCache.openSessions();
        assertThrows(IllegalArgumentException.class, () -> SessionCache.lease("nope", () -> {
            throw new IllegalArgumentException("cannot parse");
        }, List.of(), ONE));
        assertEquals(0, SessionCache.size());
        assertEquals(before, SessionCache.openSessions());
        try (var l = SessionCache.lease(model(1), List.of(), ONE)) {
            assertEquals(3, run(l.runner()).length);
        }
        assertThrows(IllegalArgumentException.class, () -> SessionCache.maxSessions(0));
    }

    @Test
    void closeAllClosesLeasedIdleAndOverBoundSessions() {
        SessionCache.maxSessions(1);
        int before = SessionCache.openSessions();
        SessionCache.Lease held = SessionCache.lease(model(1), List.of(), ONE);
        SessionCache.Lease other = SessionCache.lease(model(2), List.of(), ONE); // beyond the bound: a is held
        try (var l = SessionCache.lease(model(3), List.of(), ONE)) {
            assertEquals(3, run(l.runner()).length);
        }
        assertEquals(before + 2, SessionCache.openSessions(), "the idle third one closed for the bound");
        assertEquals(before + 2, SessionCache.closeAll(60));
        assertEquals(0, SessionCache.openSessions());
        assertEquals(0, SessionCache.size());
        assertTrue(held.runner().isClosed() && other.runner().isClosed());
        held.close();
        other.close();
        assertEquals(0, SessionCache.openSessions(), "releasing closed sessions closes nothing twice");
        // still usable afterwards (closeAll is not shutdown)
        try (var l = SessionCache.lease(model(1), List.of(), ONE)) {
            assertEquals(3, run(l.runner()).length);
        }
    }
}
