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
        double sink = work(iterations, 1); // warm-up: JIT, including on-stack replacement of the loop
        long t1 = Long.MAX_VALUE, tn = Long.MAX_VALUE;
        double[] out = new double[threads];
        for (int rep = 0; rep < 3; rep++) {
            long t0 = System.nanoTime();
            sink += work(iterations, 1);
            t1 = Math.min(t1, System.nanoTime() - t0);
            Thread[] ts = new Thread[threads];
            long s = System.nanoTime();
            for (int i = 0; i < threads; i++) {
                int k = i;
                ts[i] = new Thread(() -> out[k] = work(iterations, 1 + k));
                ts[i].start();
            }
            for (Thread t : ts) t.join();
            tn = Math.min(tn, System.nanoTime() - s);
        }
        if (Double.isNaN(sink + out[0])) throw new IllegalStateException();
        return threads * (double) t1 / tn;
    }
}
