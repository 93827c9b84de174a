package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class SessionCacheTest {

    private static OnnxModel model(long seed) {
        TestModels.Builder b = new TestModels.Builder(seed);
        b.gemm("fc", "x", "h", 4, 3, true, true).relu("relu", "h", "y");
        return b.build(13, List.of(Graphs.floatValue("x", -1, 4)), List.of(Graphs.floatValue("y", -1, 3)));
    }

    @AfterEach
    void clear() {
        SessionCache.clear();
    }

    @Test
    void oneSessionPerModelCapturesAndOptions() {
        OnnxModel m = model(1);
        RunnerOptions o = RunnerOptions.singleThreaded();
        ModelRunner a = SessionCache.runner(m, List.of("h"), o);
        // a parsed copy of the same bytes has the same hash: same session
        OnnxModel copy = OnnxModel.parse("elsewhere.onnx", m.toByteArray(), ExternalDataResolver.none());
        assertSame(a, SessionCache.runner(copy, List.of("h"), o));
        assertNotSame(a, SessionCache.runner(m, List.of(), o));
        assertNotSame(a, SessionCache.runner(m, List.of("h"), new RunnerOptions(2, 1)));
        assertNotSame(a, SessionCache.runner(model(2), List.of("h"), o));
        assertEquals(4, SessionCache.size());
    }

    @Test
    void sharedRunnersIgnoreCloseAndAreClosedByEviction() {
        OnnxModel m = model(1);
        ModelRunner r = SessionCache.runner(m, List.of(), RunnerOptions.singleThreaded());
        FloatTensor x = FloatTensor.of("x", new float[] {1, 2, 3, 4}, 1, 4);
        r.close();
        assertEquals(3, r.run(Map.of("x", x)).get("y").data().length);
        SessionCache.evict(m.sha256());
        assertEquals(0, SessionCache.size());
        assertThrows(IllegalStateException.class, () -> r.run(Map.of("x", x)));
    }

    @Test
    void concurrentTasksShareOneSessionAndTheModelIsParsedOnce() throws Exception {
        OnnxModel m = model(3);
        byte[] bytes = m.toByteArray();
        String sha = m.sha256();
        AtomicInteger parses = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<float[]>> results = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                results.add(pool.submit(() -> {
                    ModelRunner r = SessionCache.runner(sha, () -> {
                        parses.incrementAndGet();
                        return OnnxModel.parse("task.onnx", bytes, ExternalDataResolver.none());
                    }, List.of("h"), RunnerOptions.singleThreaded());
                    return r.run(Map.of("x", FloatTensor.of("x", new float[] {1, -2, 3, -4}, 1, 4))).get("y").data();
                }));
            }
            float[] first = results.get(0).get();
            for (Future<float[]> f : results) org.junit.jupiter.api.Assertions.assertArrayEquals(first, f.get());
        } finally {
            pool.shutdown();
        }
        assertEquals(1, parses.get());
        assertEquals(1, SessionCache.size());
    }
}
