package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.MemoryException;
import java.io.Serializable;
import java.util.Locale;
import java.util.Map;

/**
 * How many samples one ONNX Runtime run may take so that what the run hands back fits a memory budget.
 *
 * <p>A capturing run returns the model's outputs and every captured tensor of the whole batch at once, and holds
 * them {@value #COPIES} times while they are read: in ONNX Runtime's output buffers (native memory) and in their Java
 * copy ({@code ModelRunner}), with the stacked input batch beside them. So a batch of B samples holds about
 * B × (bytes of one sample's inputs and returned tensors) × {@value #COPIES}, and B is the largest count for which that
 * stays within {@code budgetBytes}, at most {@code maxBatch} (the configured batch size) and at least 1. A single sample
 * that does not fit is an error naming the sizes and what to change, before anything runs out of memory.
 *
 * <p>One sample's bytes are measured on the first run (one sample): that covers dynamic shapes and every model,
 * whatever shape information its graph carries. How samples are batched changes no statistic (min/max and histogram
 * counts are order-free), so adapting the batch keeps the scale table the same.
 *
 * @param budgetBytes bytes one task may hold in a run's inputs and returned tensors; {@link Long#MAX_VALUE}: no limit
 * @param maxBatch    the configured batch size, the most samples per run
 */
public record BatchBudget(long budgetBytes, int maxBatch) implements Serializable {

    /** ONNX Runtime's output buffers and their Java copy. */
    public static final int COPIES = 2;

    public BatchBudget {
        if (budgetBytes <= 0) throw new IllegalArgumentException("memory budget must be > 0 bytes, got " + budgetBytes);
        if (maxBatch <= 0) throw new IllegalArgumentException("batch size must be > 0, got " + maxBatch);
    }

    /** Batches of exactly {@code batchSize}, no memory limit. */
    public static BatchBudget fixed(int batchSize) {
        return new BatchBudget(Long.MAX_VALUE, batchSize);
    }

    /** True when the batch size does not depend on the tensors' size. */
    public boolean unlimited() {
        return budgetBytes == Long.MAX_VALUE;
    }

    /** True when one sample of {@code perSampleBytes} fits the budget (times {@link #COPIES}). */
    public boolean fits(long perSampleBytes) {
        if (unlimited() || perSampleBytes <= 0) return true;
        return perSampleBytes <= budgetBytes / COPIES;
    }

    /**
     * Samples per run for tensors of {@code perSampleBytes} per sample.
     *
     * @param what names the run in the error ("calibrate: resnet50.onnx, 54 captured tensors")
     * @throws MemoryException when one sample alone exceeds the budget
     */
    public int batchSize(long perSampleBytes, String what) {
        if (unlimited() || perSampleBytes <= 0) return maxBatch;
        long perSample = perSampleBytes > Long.MAX_VALUE / COPIES ? Long.MAX_VALUE : perSampleBytes * COPIES;
        if (perSample > budgetBytes) throw new MemoryException(tooLarge(perSampleBytes, what), null);
        return (int) Math.max(1, Math.min(maxBatch, budgetBytes / perSample));
    }

    /** The error for one sample of {@code perSampleBytes} that does not fit: the sizes and what to change. */
    String tooLarge(long perSampleBytes, String what) {
        long perSample = perSampleBytes > Long.MAX_VALUE / COPIES ? Long.MAX_VALUE : perSampleBytes * COPIES;
        return what + ": one sample's inputs and returned tensors take " + mib(perSampleBytes)
                + " (x" + COPIES + ": ONNX Runtime's buffers and their Java copy, " + mib(perSample)
                + "), more than the memory budget of " + mib(budgetBytes) + " per task (quantcal.runtime.memory-budget);"
                + " raise quantcal.runtime.memory-budget together with the memory it comes from (QUANTCAL_DRIVER_MEMORY"
                + " for deploy/quantcal, spark.executor.memory on a cluster), or run fewer tasks per JVM";
    }

    /** Bytes of float32 tensors. */
    public static long bytes(Map<String, FloatTensor> tensors) {
        long n = 0;
        for (FloatTensor t : tensors.values()) n += 4L * t.data().length;
        return n;
    }

    /** "12.5 MiB". */
    public static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
