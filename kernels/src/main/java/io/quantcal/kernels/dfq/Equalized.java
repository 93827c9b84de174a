package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;

/** What {@link CrossLayerEqualizer#equalize} returns: the rewritten model and what was done to it. */
public record Equalized(OnnxModel model, EqualizationResult result) {}
