package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every ONNX Runtime session of the JVM, cached or not, can be closed at once while runs are in flight: each run
 * finishes first, each session is closed exactly once, and a runner used afterwards refuses instead of touching a
 * closed session. (The terminal {@link SessionCache#shutdown} that the command line calls before System.exit is
 * exercised in a JVM of its own by the job's NativeShutdownTest: here it would close the sessions of every later
 * test in this JVM.)
 */
class SessionShutdownTest {

    private static OnnxModel model(long seed) {
        TestModels.Builder b = new TestModels.Builder(seed);
        b.conv("conv", "x", "c", 2, 8, 3, 1, 1, 1, true).relu("relu", "c", "y");
        return b.build(13, List.of(Graphs.floatValue("x", -1, 2, 16, 16)), List.of(Graphs.floatValue("y", -1, 8, 16, 16)));
    }

    private static final FloatTensor X = FloatTensor.of("x", new float[4 * 2 * 16 * 16], 4, 2, 16, 16);

    @AfterEach
    void clear() {
        SessionCache.clear();
    }

    @Test
    void closeAllWaitsForRunsInFlightAndClosesCachedAndUncachedSessionsOnce() throws Exception {
        int before = SessionCache.openSessions();
        // a task's lease holds the cached session: shutdown closes it all the same (after the run in flight)
        SessionCache.Lease lease = SessionCache.lease(model(1), List.of("c"), RunnerOptions.singleThreaded());
        ModelRunner cached = lease.runner();
        ModelRunner own = ModelRunner.open(model(2), RunnerOptions.singleThreaded());
        assertEquals(before + 2, SessionCache.openSessions());

        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            CountDownLatch running = new CountDownLatch(2);
            AtomicLong runs = new AtomicLong();
            List<Future<String>> loops = List.of(cached, own).stream().map(r -> pool.submit(() -> {
                running.countDown();
                try {
                    while (true) {
                        assertEquals(8 * 16 * 16 * 4, r.run(Map.of("x", X)).get("y").data().length);
                        runs.incrementAndGet();
                    }
                } catch (IllegalStateException closed) {
                    return closed.getMessage();
                }
            })).toList();
            assertTrue(running.await(30, TimeUnit.SECONDS));
            while (runs.get() < 10) Thread.sleep(1);

            // two closers at once, as the command line's explicit close and the shutdown hook may be
            Future<Integer> other = pool.submit(() -> SessionCache.closeAll(60));
            int closedHere = SessionCache.closeAll(60);
            int closed = closedHere + other.get(30, TimeUnit.SECONDS);
            assertTrue(closed >= 2, "closed " + closed);

            for (Future<String> f : loops) {
                String m = f.get(30, TimeUnit.SECONDS);
                assertTrue(m.contains("test-model.onnx") && m.contains("the model runner is closed"), m);
            }
            assertTrue(cached.isClosed() && own.isClosed());
            assertEquals(0, SessionCache.openSessions());
            assertEquals(0, SessionCache.size());
            own.close(); // closed already: nothing to do, no second close of the native session
            assertEquals(0, SessionCache.closeAll(60));
            lease.close(); // the holder lets go of a closed session: nothing is closed twice
            assertEquals(0, SessionCache.openSessions());
        } finally {
            pool.shutdownNow();
        }
        assertFalse(SessionCache.isShutDown(), "closeAll leaves the cache usable");
        try (SessionCache.Lease l = SessionCache.lease(model(1), List.of("c"), RunnerOptions.singleThreaded())) {
            ModelRunner again = l.runner();
            assertFalse(again.isClosed(), "a closed session is not handed out again");
            assertEquals(8 * 16 * 16 * 4, again.run(Map.of("x", X)).get("y").data().length);
        }
        assertThrows(IllegalStateException.class, () -> cached.run(Map.of("x", X)));
    }
}
