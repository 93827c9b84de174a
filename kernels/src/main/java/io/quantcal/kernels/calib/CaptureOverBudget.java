package io.quantcal.kernels.calib;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One sample's captured tensors, together, exceed the memory budget ({@link Batches#forEachPinned}): what each takes,
 * measured on the first run (one sample), so that the caller can capture them in groups that fit, one pass over
 * the data per group, instead of failing. {@link #getMessage()} is the error for when no grouping can fit (a single
 * tensor larger than the budget).
 */
public final class CaptureOverBudget extends RuntimeException {

    private final LinkedHashMap<String, Long> sampleBytes;
    private final long inputBytes;

    private CaptureOverBudget(String message, Map<String, Long> sampleBytes, long inputBytes) {
        super(message, null, false, false);
        this.sampleBytes = new LinkedHashMap<>(sampleBytes);
        this.inputBytes = inputBytes;
    }

    /**
     * Throws when one sample of {@code perSampleBytes} does not fit {@code budget}: {@code sampleBytes} per captured
     * tensor (or layer), {@code fixedBytes} what every run returns besides them.
     */
    static void check(BatchBudget budget, long perSampleBytes, String what, Map<String, Long> sampleBytes, long fixedBytes) {
        if (!budget.fits(perSampleBytes)) {
            throw new CaptureOverBudget(budget.tooLarge(perSampleBytes, what), sampleBytes, fixedBytes);
        }
    }

    /** Each captured tensor's bytes for one sample, in capture order. */
    public Map<String, Long> sampleBytes() {
        return sampleBytes;
    }

    /** One sample's fed inputs in bytes (for a comparison of two models, with both models' outputs): what every group returns. */
    public long inputBytes() {
        return inputBytes;
    }

    /**
     * {@code tensors} in groups, in their order, each of which one sample's run returns within {@code budget} (with its
     * inputs, times {@link BatchBudget#COPIES}); a tensor this run did not return counts 0 bytes.
     *
     * @throws io.quantcal.kernels.runtime.MemoryException naming the tensor when one alone does not fit
     */
    public static List<List<String>> groups(List<String> tensors, Map<String, Long> sampleBytes, long inputBytes,
                                            BatchBudget budget, String what) {
        List<List<String>> groups = new java.util.ArrayList<>();
        List<String> current = new java.util.ArrayList<>();
        long room = budget.budgetBytes() / BatchBudget.COPIES - inputBytes, used = 0;
        for (String t : tensors) {
            long b = sampleBytes.getOrDefault(t, 0L);
            if (b > room) {
                throw new io.quantcal.kernels.runtime.MemoryException(what + ": tensor " + t + " alone takes "
                        + BatchBudget.mib(b) + " for one sample (x" + BatchBudget.COPIES + ", with the inputs' "
                        + BatchBudget.mib(inputBytes) + "), more than the memory budget of " + BatchBudget.mib(budget.budgetBytes())
                        + " per task (quantcal.runtime.memory-budget); raise quantcal.runtime.memory-budget together with the"
                        + " memory it comes from (QUANTCAL_DRIVER_MEMORY for deploy/quantcal, spark.executor.memory on a"
                        + " cluster), or run fewer tasks per JVM", null);
            }
            if (used + b > room && !current.isEmpty()) {
                groups.add(current);
                current = new java.util.ArrayList<>();
                used = 0;
            }
            current.add(t);
            used += b;
        }
        if (!current.isEmpty()) groups.add(current);
        return groups;
    }
}
