package io.quantcal.kernels.runtime;

import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * How many threads ND4J's native kernels (OpenMP loops, BLAS gemms) may use in this JVM. A Spark executor runs
 * as many tasks at once as it has task slots, and each kernel call would otherwise start one thread per core:
 * n tasks × n threads on n cores. A task calls {@link #limit} before its kernels; ND4J's settings are per JVM, so
 * this is set once and later calls with the same value cost nothing.
 */
public final class KernelThreads {

    private static volatile int current = -1;

    private KernelThreads() {}

    /** At most {@code threads} native threads per kernel call; 0 leaves ND4J's default. */
    public static void limit(int threads) {
        if (threads < 0) throw new IllegalArgumentException("KernelThreads: threads must be >= 0, got " + threads);
        if (threads == 0 || current == threads) return;
        synchronized (KernelThreads.class) {
            if (current == threads) return;
            Nd4j.getExecutioner();
            NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
            Nd4j.getEnvironment().setMaxThreads(threads);
            Nd4j.getEnvironment().setMaxMasterThreads(threads);
            Nd4j.factory().blas().setMaxThreads(threads);
            current = threads;
        }
    }

    /** The limit set in this JVM, or -1 when none was. */
    public static int current() {
        return current;
    }
}
