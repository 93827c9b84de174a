package io.quantcal.kernels.onnx;

import java.util.List;
import java.util.Map;

/**
 * What {@link BatchNormFolder#fold} returns: the rewritten model, the batch norms folded into the Conv before them,
 * the stand-alone ones rewritten as depthwise 1×1 Convs (each {@link FoldedBatchNorm#conv()} names the new Conv), and
 * the stand-alone ones kept as they are, each with the reason; all in graph order.
 */
public record BatchNormFolding(OnnxModel model, List<FoldedBatchNorm> folded, List<FoldedBatchNorm> asConv,
                               Map<String, String> kept) {

    public BatchNormFolding {
        folded = List.copyOf(folded);
        asConv = List.copyOf(asConv);
        kept = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(kept));
    }

    public BatchNormFolding(OnnxModel model, List<FoldedBatchNorm> folded) {
        this(model, folded, List.of(), Map.of());
    }
}
