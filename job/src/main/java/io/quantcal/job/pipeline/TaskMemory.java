package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.calib.BatchBudget;
import io.quantcal.kernels.runtime.MemoryException;
import java.util.Locale;
import java.util.function.Supplier;
import org.apache.spark.SparkContext;

/**
 * Memory of the Spark tasks that run ONNX Runtime: the batch budget each task gets (quantcal.runtime.memory-budget),
 * and running out of memory anyway turned into a one-line error naming the pass and what to lower, instead of the
 * executor JVM dying of the {@link OutOfMemoryError} (Spark's executors exit with code 52 on a fatal error, the
 * driver too in local mode).
 */
public final class TaskMemory {

    /** Of the heap, the share that the ONNX Runtime runs' tensors of all concurrent tasks may hold (both copies). */
    static final double AUTO_HEAP_SHARE = 0.25;

    private TaskMemory() {}

    /** The batch budget of one task of this run: the configured bytes, or the "auto" share of the heap per task. */
    public static BatchBudget budget(SparkContext sc, QuantcalConfig cfg) {
        long bytes = cfg.memoryBudget() > 0 ? cfg.memoryBudget()
                : autoBudget(heapBytes(sc), concurrentTasks(sc));
        return new BatchBudget(bytes, cfg.calibration().batchSize());
    }

    /** "auto": {@link #AUTO_HEAP_SHARE} of the heap, shared by the tasks that run at once in that JVM; at least 1 MiB. */
    public static long autoBudget(long heapBytes, int concurrentTasks) {
        return Math.max(1L << 20, (long) (heapBytes * AUTO_HEAP_SHARE) / Math.max(1, concurrentTasks));
    }

    /** The heap of the JVMs that run the tasks: the driver's in local mode, spark.executor.memory otherwise. */
    static long heapBytes(SparkContext sc) {
        if (sc.isLocal()) return Runtime.getRuntime().maxMemory();
        return (long) sc.executorMemory() << 20;
    }

    /** Tasks that run at once in one JVM: N of local[N] (local[*]: the cores), or executor cores / task cpus. */
    static int concurrentTasks(SparkContext sc) {
        if (sc.isLocal()) return localThreads(sc.master());
        int cores = sc.getConf().getInt("spark.executor.cores", 1);
        int perTask = Math.max(1, sc.getConf().getInt("spark.task.cpus", 1));
        return Math.max(1, cores / perTask);
    }

    /** local → 1, local[4] → 4, local[*] → the cores, local[4,2] (with retries) → 4. */
    static int localThreads(String master) {
        String m = master.strip().toLowerCase(Locale.ROOT);
        int open = m.indexOf('['), close = m.indexOf(']');
        if (open < 0 || close < open) return 1;
        String n = m.substring(open + 1, close).split(",")[0].strip();
        if (n.equals("*")) return Runtime.getRuntime().availableProcessors();
        try {
            return Math.max(1, Integer.parseInt(n));
        } catch (NumberFormatException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /**
     * Runs a task's work; an {@link OutOfMemoryError} becomes a {@link MemoryException} naming {@code pass} and what the
     * task was doing, and a memory error without a pass gets this one. The task then fails like any other (the
     * arrays it held are unreachable once the error unwinds the stack), the job fails, and the command line reports it
     * with exit code 1.
     */
    public static <T> T guard(String pass, String doing, Supplier<T> work) {
        try {
            return work.get();
        } catch (OutOfMemoryError e) {
            throw MemoryException.ranOutOfMemory(pass, doing, e);
        } catch (MemoryException e) {
            throw e.inPass(pass);
        }
    }
}
