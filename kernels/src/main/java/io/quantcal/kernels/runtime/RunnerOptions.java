package io.quantcal.kernels.runtime;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import java.io.Serializable;
import java.util.Objects;

/**
 * How a {@link ModelRunner} sets up its ONNX Runtime session.
 *
 * @param intraOpThreads threads inside one operator; 0 lets ONNX Runtime choose (all cores). A Spark
 *                       task should pass its cores per task, or tasks oversubscribe the executor.
 * @param interOpThreads threads across independent operators (sequential execution uses one); 0 lets
 *                       ONNX Runtime choose
 * @param optimization   graph optimization level. ALL_OPT is safe with captured tensors: ONNX Runtime
 *                       does not fuse away a node whose output is a graph output, and captures are
 *                       graph outputs (checked by ModelRunnerTest against truncated models).
 * @param packLargeWeights whether a large model's session ({@link io.quantcal.kernels.onnx.OnnxModel#large()}) lets
 *                       ONNX Runtime pre-pack its weights for its GEMM kernels (a second, anonymous copy of every weight
 *                       in each session) instead of reading them from the memory-mapped file: true for speed timing
 *                       (what a deployment runs), false (the default) for the passes' capture and comparison sessions.
 *                       Models below the large-model threshold are always pre-packed.
 */
public record RunnerOptions(int intraOpThreads, int interOpThreads, OptLevel optimization, boolean packLargeWeights)
        implements Serializable {

    public RunnerOptions {
        if (intraOpThreads < 0 || interOpThreads < 0) {
            throw new IllegalArgumentException("thread counts must be >= 0 (0 = ONNX Runtime default), got "
                    + intraOpThreads + " intra-op, " + interOpThreads + " inter-op");
        }
        Objects.requireNonNull(optimization, "optimization");
    }

    public RunnerOptions(int intraOpThreads, int interOpThreads, OptLevel optimization) {
        this(intraOpThreads, interOpThreads, optimization, false);
    }

    /** Full graph optimization. */
    public RunnerOptions(int intraOpThreads, int interOpThreads) {
        this(intraOpThreads, interOpThreads, OptLevel.ALL_OPT);
    }

    /** One thread each, full optimization: one Spark task per core. */
    public static RunnerOptions singleThreaded() {
        return new RunnerOptions(1, 1);
    }

    public RunnerOptions withOptimization(OptLevel level) {
        return new RunnerOptions(intraOpThreads, interOpThreads, level, packLargeWeights);
    }

    /** These options with a large model's weights pre-packed as a deployment would run it (speed timing). */
    public RunnerOptions packingLargeWeights() {
        return new RunnerOptions(intraOpThreads, interOpThreads, optimization, true);
    }
}
