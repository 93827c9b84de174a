package io.quantcal.kernels.runtime;

/**
 * A run that does not fit its memory: one sample's tensors larger than the memory budget, ONNX Runtime unable to
 * allocate a batch, or the JVM out of heap inside a pass. The message says which pass (once known), what was being
 * held and which setting to lower, so that the command line can report it on one line with exit code 1 instead of
 * the JVM dying of an {@link OutOfMemoryError} (Spark's executors exit with code 52 on one).
 */
public final class MemoryException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** What to lower or raise, said once for every memory error. */
    public static final String ADVICE = "lower quantcal.runtime.memory-budget or quantcal.calibration.batch-size, use fewer"
            + " cores per executor (quantcal.spark.master = \"local[1]\", spark.executor.cores), or give the JVM more"
            + " memory (QUANTCAL_DRIVER_MEMORY for deploy/quantcal, spark.executor.memory on a cluster)";

    private final String pass;

    public MemoryException(String message, Throwable cause) {
        this(null, message, cause);
    }

    private MemoryException(String pass, String message, Throwable cause) {
        super(message, cause);
        this.pass = pass;
    }

    /** The pass the error happened in, or null when not known yet. */
    public String pass() {
        return pass;
    }

    /** This error attributed to {@code pass}: "{@code <pass>}: " before the message, unless a pass is named already. */
    public MemoryException inPass(String pass) {
        if (this.pass != null) return this;
        MemoryException m = new MemoryException(pass, pass + ": " + getMessage(), getCause());
        m.setStackTrace(getStackTrace());
        return m;
    }

    /**
     * {@code error}, which {@code pass} raised, as a one-line error: "{@code <pass>} ran out of memory (Java heap
     * space) while {@code doing}; lower ...".
     */
    public static MemoryException ranOutOfMemory(String pass, String doing, OutOfMemoryError error) {
        String what = error.getMessage() == null ? "" : " (" + error.getMessage() + ")";
        // Not the error as cause: Spark looks for a fatal error down a failed task's cause chain
        // (spark.executor.killOnFatalError.depth) and kills the executor, the whole JVM in local mode, when it finds one.
        MemoryException m = new MemoryException(pass, pass + " ran out of memory" + what
                + (doing == null || doing.isBlank() ? "" : " while " + doing) + "; " + ADVICE, null);
        m.setStackTrace(error.getStackTrace());
        return m;
    }
}
