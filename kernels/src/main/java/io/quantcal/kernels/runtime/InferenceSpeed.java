package io.quantcal.kernels.runtime;

import io.quantcal.kernels.onnx.OnnxModel;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Map;

/**
 * How fast the quantized model runs against its FP32 model on this machine: both in ONNX Runtime with the same options
 * (no captured tensors: as deployed), on the same batch of real samples, one run of each in turn after two warm-up runs
 * each, until both have at least {@code minRuns} runs and the time budget is spent (or {@code maxRuns}); the medians.
 * Taking turns keeps a change in the machine's load from favouring one model. Each run is ONNX Runtime's alone: the
 * batch becomes ONNX Runtime tensors once and the outputs are not copied out ({@link ModelRunner.Feed}); through
 * {@link ModelRunner#runInputs} those copies added the same fixed time to both models (0.6 ms a run for a 256 KB batch on
 * a VM whose page faults are dear), which pulled every ratio towards 1.
 */
public final class InferenceSpeed {

    private InferenceSpeed() {}

    /** Median milliseconds per run of the batch, and how many runs each model made. */
    public record Result(int batch, int intraOpThreads, int runs, double fp32Ms, double quantizedMs) implements Serializable {
        /** FP32 time over quantized time: above 1 the quantized model is faster. */
        public double speedup() {
            return fp32Ms / quantizedMs;
        }
    }

    public static Result measure(OnnxModel fp32, OnnxModel quantized, Map<String, InputTensor> batch, RunnerOptions options,
                                 long budgetNanos, int minRuns, int maxRuns) {
        if (batch.isEmpty()) throw new IllegalArgumentException("InferenceSpeed: no input tensors");
        return measure(fp32, quantized, batch, (int) batch.values().iterator().next().shape()[0], options, budgetNanos,
                minRuns, maxRuns);
    }

    /** {@link #measure} of a batch of {@code samples} samples (an input without a batch dimension holds one). */
    public static Result measure(OnnxModel fp32, OnnxModel quantized, Map<String, InputTensor> batch, int samples,
                                 RunnerOptions options, long budgetNanos, int minRuns, int maxRuns) {
        if (batch.isEmpty()) throw new IllegalArgumentException("InferenceSpeed: no input tensors");
        if (minRuns < 1 || maxRuns < minRuns) {
            throw new IllegalArgumentException("InferenceSpeed: need 1 <= minRuns <= maxRuns, got " + minRuns + ", " + maxRuns);
        }
        // timed as deployed: a large model's weights pre-packed (the passes' sessions read them mapped)
        RunnerOptions timed = options.packingLargeWeights();
        try (ModelRunner a = ModelRunner.open(fp32, timed); ModelRunner b = ModelRunner.open(quantized, timed);
             ModelRunner.Feed fa = a.feed(batch); ModelRunner.Feed fb = b.feed(batch)) {
            for (int i = 0; i < 2; i++) {
                a.timeRun(fa);
                b.timeRun(fb);
            }
            double[] ta = new double[maxRuns], tb = new double[maxRuns];
            int runs = 0;
            long start = System.nanoTime();
            while (runs < maxRuns && (runs < minRuns || System.nanoTime() - start < budgetNanos)) {
                ta[runs] = a.timeRun(fa) / 1e6;
                tb[runs] = b.timeRun(fb) / 1e6;
                runs++;
            }
            return new Result(samples, options.intraOpThreads(), runs, median(ta, runs), median(tb, runs));
        }
    }

    private static double median(double[] v, int n) {
        double[] s = Arrays.copyOf(v, n);
        Arrays.sort(s);
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
