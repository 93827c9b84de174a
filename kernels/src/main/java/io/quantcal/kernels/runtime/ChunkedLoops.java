package io.quantcal.kernels.runtime;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Element-wise loops of one task over fixed chunks of an index range, on up to {@code threads} threads (the caller's
 * and {@code threads − 1} pool threads that live as long as this object). A sum is the chunks' partial sums added in
 * chunk order, and chunk boundaries depend only on the range and the chunk size: results are bit for bit the same
 * whatever the thread count. The body of a chunk must touch only its own indices (and read shared state).
 *
 * <p>For a task that has cores to itself: a wave of the sequential AdaRound with one layer is one Spark task, and
 * its weight-wise work (rectified sigmoid, regularizer, Adam) would otherwise leave the executor's other cores idle.
 */
public final class ChunkedLoops implements AutoCloseable {

    /** One chunk [from, to): a partial sum (0 for a loop that only writes). */
    @FunctionalInterface
    public interface Chunk {
        double run(int from, int to);
    }

    /** One thread, no pool: the loops run on the caller. */
    public static final ChunkedLoops SEQUENTIAL = new ChunkedLoops(1);

    private final int threads;
    private final ExecutorService pool;

    public ChunkedLoops(int threads) {
        if (threads < 1) throw new IllegalArgumentException("ChunkedLoops: threads must be >= 1, got " + threads);
        this.threads = threads;
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(() -> {
                KernelThreads.applyToThisThread(); // OpenMP's thread count is per thread: a new one would use every core
                r.run();
            }, "quantcal-loop");
            t.setDaemon(true);
            return t;
        });
    }

    /** Σ over the chunks of [0, n) (each {@code chunk} long, the last shorter) of body's result, in chunk order. */
    public double sum(int n, int chunk, Chunk body) {
        if (chunk < 1) throw new IllegalArgumentException("ChunkedLoops: chunk must be >= 1, got " + chunk);
        int chunks = (int) ((n + (long) chunk - 1) / chunk);
        if (pool == null || chunks < 2) {
            double s = 0;
            for (int c = 0; c < chunks; c++) s += body.run(c * chunk, (int) Math.min(n, (long) (c + 1) * chunk));
            return s;
        }
        double[] parts = new double[chunks];
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                parts[c] = body.run(c * chunk, (int) Math.min(n, (long) (c + 1) * chunk));
            }
        };
        int helpers = Math.min(threads - 1, chunks - 1);
        Future<?>[] futures = new Future<?>[helpers];
        for (int i = 0; i < helpers; i++) futures[i] = pool.submit(worker);
        Throwable failed = null;
        try {
            worker.run();
        } catch (RuntimeException | Error e) {
            failed = e;
            next.set(chunks); // the helpers stop at their next chunk
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failed == null) failed = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failed == null) failed = e;
            }
        }
        if (failed instanceof RuntimeException r) throw r;
        if (failed instanceof Error e) throw e;
        if (failed != null) throw new IllegalStateException("ChunkedLoops: a chunk failed", failed);
        double s = 0;
        for (double p : parts) s += p;
        return s;
    }

    /** Runs body on every chunk of [0, n). */
    public void forEach(int n, int chunk, Chunk body) {
        sum(n, chunk, body);
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
