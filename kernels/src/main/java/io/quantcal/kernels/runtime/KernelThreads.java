package io.quantcal.kernels.runtime;

import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * How many threads ND4J's native kernels (OpenMP loops, BLAS gemms) may use in this JVM. A Spark executor runs
 * as many tasks at once as it has task slots, and each kernel call would otherwise start one thread per core:
 * n tasks × n threads on n cores. A task calls {@link #limit} before its kernels.
 *
 * <p>Two kinds of setting: ND4J's environment and BLAS limits are per JVM (set once, later calls with the same value
 * cost nothing), while OpenMP's thread count is per calling thread ({@code omp_set_num_threads} sets the calling
 * thread's value; a new thread starts with every core). So each thread that runs kernels applies the limit itself:
 * a Spark task thread through {@link #limit}, a task's helper threads through {@link #applyToThisThread}. Applied once
 * per JVM only, the second task thread of local[2] ran its gemms on two OpenMP threads, and two row units of a gemm on
 * two threads ran 1.03x faster than one, against 1.71x with each thread limited ({@code deploy/quantcal-bench adaround
 * cout=128 depth=1152}).
 */
public final class KernelThreads {

    private static volatile int current = -1;
    /** The OpenMP thread count this thread has set, -1 before its first. */
    private static final ThreadLocal<int[]> THREAD = ThreadLocal.withInitial(() -> new int[] {-1});

    private KernelThreads() {}

    /** At most {@code threads} native threads per kernel call; 0 leaves ND4J's default. */
    public static void limit(int threads) {
        if (threads < 0) throw new IllegalArgumentException("KernelThreads: threads must be >= 0, got " + threads);
        if (threads == 0) return;
        if (current != threads) {
            synchronized (KernelThreads.class) {
                if (current != threads) {
                    Nd4j.getExecutioner();
                    Nd4j.getEnvironment().setMaxThreads(threads);
                    Nd4j.getEnvironment().setMaxMasterThreads(threads);
                    Nd4j.factory().blas().setMaxThreads(threads);
                    current = threads;
                }
            }
        }
        int[] mine = THREAD.get();
        if (mine[0] != threads) {
            NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
            mine[0] = threads;
        }
    }

    /** This thread's OpenMP threads at the JVM's limit, if one was set (a task's helper thread, before its kernels). */
    public static void applyToThisThread() {
        int c = current;
        if (c > 0) limit(c);
    }

    /**
     * Threads for each task of a stage of {@code tasks} tasks that runs alone on executors of {@code slots} task slots
     * each, {@code perTask} threads per slot (runtime.kernel-threads; 0, ND4J's default, stays 0): a stage with fewer
     * tasks than an executor has slots gives each task the slots nobody else can use (slots / tasks of them, rounded
     * down), so that a lone task is not left with one core of an idle executor. However the tasks are placed, one
     * executor never runs more than slots × perTask threads. The task runs them as its own Java threads (e.g. gemm units
     * side by side, {@link ChunkedLoops}); ND4J's threads stay at perTask, since its multi-threaded gemm runs slower
     * than one thread on AdaRound's shapes up to [128, 1152] × [1152, 2048] ({@code deploy/quantcal-bench adaround}).
     */
    public static int forStage(int perTask, int slots, int tasks) {
        if (perTask < 0 || slots < 1 || tasks < 1) {
            throw new IllegalArgumentException("KernelThreads.forStage: perTask >= 0, slots >= 1, tasks >= 1, got " + perTask
                    + ", " + slots + ", " + tasks);
        }
        if (perTask == 0) return 0;
        return perTask * Math.max(1, slots / tasks);
    }

    /** The limit set in this JVM, or -1 when none was. */
    public static int current() {
        return current;
    }
}
