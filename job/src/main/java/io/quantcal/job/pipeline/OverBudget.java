package io.quantcal.job.pipeline;

import io.quantcal.kernels.calib.BatchBudget;
import io.quantcal.kernels.calib.CaptureOverBudget;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * On the driver: a task found that one sample's captured tensors exceed the memory budget ({@link CaptureOverBudget})
 * and handed back what each took ({@link Sizes}), so that the pass can capture them in groups that fit, one pass over
 * the data each (calibrate's tensors, evaluate's layers).
 */
final class OverBudget extends RuntimeException {

    /** What a task hands back: bytes per captured tensor (or layer pair), what every run returns besides, the error. */
    record Sizes(LinkedHashMap<String, Long> sampleBytes, long fixedBytes, String message) implements Serializable {
        static Sizes of(CaptureOverBudget e) {
            return new Sizes(new LinkedHashMap<>(e.sampleBytes()), e.inputBytes(), e.getMessage());
        }
    }

    final Sizes sizes;

    OverBudget(Sizes sizes) {
        super(sizes.message(), null, false, false);
        this.sizes = sizes;
    }

    /**
     * {@code tensors} in groups that fit {@code budget}, in order ({@link CaptureOverBudget#groups}).
     *
     * @throws io.quantcal.kernels.runtime.MemoryException when one tensor alone does not fit, or when no grouping
     *     helps (a single group: the fixed part alone is too large)
     */
    List<List<String>> groups(List<String> tensors, BatchBudget budget, String what) {
        List<List<String>> g = CaptureOverBudget.groups(tensors, sizes.sampleBytes(), sizes.fixedBytes(), budget, what);
        if (g.size() < 2) throw new io.quantcal.kernels.runtime.MemoryException(getMessage(), null);
        return g;
    }
}
