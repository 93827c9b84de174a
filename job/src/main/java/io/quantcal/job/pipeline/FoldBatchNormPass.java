package io.quantcal.job.pipeline;

import io.quantcal.kernels.onnx.BatchNormFolder;
import io.quantcal.kernels.onnx.BatchNormFolding;
import io.quantcal.kernels.dfq.PreActivation;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code fold-bn}: folds BatchNormalization into the preceding Conv (driver side, no data). */
public final class FoldBatchNormPass implements Pass {

    @Override
    public String name() {
        return "fold-bn";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        BatchNormFolding f = BatchNormFolder.fold(state.model());
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("folded", f.folded().size());
        s.put("batch_norms", f.folded().stream().map(b -> b.batchNorm() + " -> " + b.conv()).toList());
        Map<String, PreActivation> pre = new LinkedHashMap<>();
        for (var b : f.folded()) pre.put(b.conv(), PreActivation.of(b));
        return state.withModel(f.model(), f.folded()).withPreActivations(pre).withSummary(name(), s);
    }
}
