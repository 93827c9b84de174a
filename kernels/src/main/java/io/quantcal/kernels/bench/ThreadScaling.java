package io.quantcal.kernels.bench;

/**
 * The machine's own parallel speedup on a pure compute loop: the same work per thread, run on one thread
 * and then on {@code n} threads at once. Scaling figures of a distributed run mean something only beside
 * this number (two vCPUs often behave like much less than two cores).
 */
public final class ThreadScaling {

    private ThreadScaling() {}

    /** A dependent floating-point loop no compiler can remove (the result is returned). */
    static double work(long iterations, double seed) {
        double a = seed, b = 1.0000001;
        for (long i = 0; i < iterations; i++) {
            a = a * b + 1e-9;
            b = b * 0.9999999 + 1e-7;
        }
        return a + b;
    }

    /**
     * Speedup of {@code threads} threads over one, each thread doing {@code iterations}: threads·t1/tn, with t1
     * and tn the best of three alternating runs each (after a full-length warm-up, so both are compiled code and
     * a passing load on the machine does not decide the ratio).
     */
    public static double speedup(int threads, long iterations) throws InterruptedException {
        double[] out = new double[threads + 1];
        double r = speedup(threads, k -> () -> out[k] += work(iterations, 1 + k));
        if (Double.isNaN(out[0] + out[threads])) throw new IllegalStateException();
        return r;
    }

    /**
     * Speedup of {@code threads} threads over one on any work: thread k runs {@code work.apply(k)} (the same amount
     * of work for every k; k = threads is the one-thread run's), measured as {@link #speedup(int, long)} does. Used
     * for the machine's own speedup on float32 gemms, which two vCPUs that share a core's vector units scale much
     * worse than a scalar loop.
     */
    public static double speedup(int threads, java.util.function.IntFunction<Runnable> work) throws InterruptedException {
        Runnable alone = work.apply(threads);
        alone.run(); // warm-up: JIT, including on-stack replacement of a loop; a native library's per-thread setup
        // the threads live for the whole measurement and warm up first, as a Spark executor's task threads do
        java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(threads + 1);
        java.util.concurrent.CyclicBarrier done = new java.util.concurrent.CyclicBarrier(threads + 1);
        int reps = 3;
        Thread[] ts = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            Runnable mine = work.apply(i);
            ts[i] = new Thread(() -> {
                try {
                    mine.run();
                    for (int rep = 0; rep < reps; rep++) {
                        start.await();
                        mine.run();
                        done.await();
                    }
                } catch (InterruptedException | java.util.concurrent.BrokenBarrierException e) {
                    Thread.currentThread().interrupt();
                } catch (RuntimeException | Error e) {
                    start.reset(); // the waiting main thread gets BrokenBarrierException instead of waiting forever
                    done.reset();
                    throw e;
                }
            });
            ts[i].start();
        }
        long t1 = Long.MAX_VALUE, tn = Long.MAX_VALUE;
        try {
            for (int rep = 0; rep < reps; rep++) {
                long t0 = System.nanoTime();
                alone.run();
                t1 = Math.min(t1, System.nanoTime() - t0);
                start.await(); // every thread has warmed up and waits here
                long s = System.nanoTime();
                done.await();
                tn = Math.min(tn, System.nanoTime() - s);
            }
        } catch (java.util.concurrent.BrokenBarrierException e) {
            throw new IllegalStateException("ThreadScaling: a worker thread failed", e);
        }
        for (Thread t : ts) t.join();
        return threads * (double) t1 / tn;
    }
}
