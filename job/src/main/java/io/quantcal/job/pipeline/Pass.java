package io.quantcal.job.pipeline;

/**
 * One step of the pipeline: reads the state so far, runs its Spark work, returns the updated state.
 * The configured list of passes is the whole program.
 */
public interface Pass {

    String name();

    PipelineState run(RunContext ctx, PipelineState state);
}
