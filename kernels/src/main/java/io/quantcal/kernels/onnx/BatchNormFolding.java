package io.quantcal.kernels.onnx;

import java.util.List;

/** What {@link BatchNormFolder#fold} returns: the rewritten model and the batch norms folded, in graph order. */
public record BatchNormFolding(OnnxModel model, List<FoldedBatchNorm> folded) {

    public BatchNormFolding {
        folded = List.copyOf(folded);
    }
}
