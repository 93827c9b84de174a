package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** Chunked loops: every index once, sums in chunk order whatever the thread count, failures reach the caller. */
class ChunkedLoopsTest {

    @Test
    void sumIsTheChunksPartialSumsInChunkOrderForEveryThreadCount() {
        Random r = new Random(5);
        double[] x = new double[100_003];
        for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian() * Math.pow(10, r.nextInt(12) - 6);
        int chunk = 4096;
        // the reference, by hand: partial sums of [0, 4096), [4096, 8192), ... added left to right
        double expected = 0;
        for (int from = 0; from < x.length; from += chunk) {
            double part = 0;
            for (int i = from; i < Math.min(x.length, from + chunk); i++) part += x[i];
            expected += part;
        }
        double plain = 0;
        for (double v : x) plain += v;
        assertTrue(plain != expected, "the test needs data whose sum depends on the order");
        for (int threads = 1; threads <= 4; threads++) {
            try (ChunkedLoops loops = new ChunkedLoops(threads)) {
                for (int rep = 0; rep < 20; rep++) {
                    double s = loops.sum(x.length, chunk, (from, to) -> {
                        double part = 0;
                        for (int i = from; i < to; i++) part += x[i];
                        return part;
                    });
                    assertEquals(Double.doubleToLongBits(expected), Double.doubleToLongBits(s), threads + " threads");
                }
            }
        }
    }

    @Test
    void forEachVisitsEveryIndexOnce() {
        for (int n : new int[] {0, 1, 7, 64, 65, 1000}) {
            try (ChunkedLoops loops = new ChunkedLoops(3)) {
                AtomicIntegerArray seen = new AtomicIntegerArray(n);
                loops.forEach(n, 8, (from, to) -> {
                    assertTrue(to - from <= 8 && to > from);
                    for (int i = from; i < to; i++) seen.incrementAndGet(i);
                    return 0;
                });
                int[] counts = new int[n];
                for (int i = 0; i < n; i++) counts[i] = seen.get(i);
                int[] ones = new int[n];
                java.util.Arrays.fill(ones, 1);
                assertArrayEquals(ones, counts, "n = " + n);
            }
        }
    }

    @Test
    void aFailingChunkFailsTheLoopAndTheLoopsStayUsable() {
        try (ChunkedLoops loops = new ChunkedLoops(2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> loops.sum(1000, 10, (from, to) -> {
                if (from == 500) throw new IllegalStateException("chunk at 500");
                return 1;
            }));
            assertEquals("chunk at 500", e.getMessage());
            assertEquals(100.0, loops.sum(1000, 10, (from, to) -> 1));
        }
        assertThrows(IllegalArgumentException.class, () -> new ChunkedLoops(0));
        assertThrows(IllegalArgumentException.class, () -> ChunkedLoops.SEQUENTIAL.sum(10, 0, (a, b) -> 0));
    }

    @Test
    void aStageWithFewerTasksThanSlotsGivesEachTaskTheIdleSlots() {
        assertEquals(2, KernelThreads.forStage(1, 2, 1));  // local[2], a one-layer wave
        assertEquals(1, KernelThreads.forStage(1, 2, 2));
        assertEquals(1, KernelThreads.forStage(1, 2, 5));
        assertEquals(2, KernelThreads.forStage(1, 4, 2));  // 4 slots, 2 tasks: 2 each, 4 in all if both land on one executor
        assertEquals(1, KernelThreads.forStage(1, 4, 3));  // rounded down: never more than the slots
        assertEquals(8, KernelThreads.forStage(2, 4, 1));
        assertEquals(0, KernelThreads.forStage(0, 4, 1));  // ND4J's default stays the default
        assertThrows(IllegalArgumentException.class, () -> KernelThreads.forStage(1, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> KernelThreads.forStage(1, 2, 0));
    }
}
