package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import java.util.List;
import java.util.Map;

/**
 * What {@link HighBiasAbsorber#absorb} returns.
 *
 * @param model          the rewritten model
 * @param absorbed       the amounts moved, per pair, in graph order
 * @param preActivations the caller's statistics with βᵢ − cᵢ for the layers that gave up bias
 */
public record HighBiasAbsorption(OnnxModel model, List<AbsorbedBias> absorbed, Map<String, PreActivation> preActivations) {

    public HighBiasAbsorption {
        absorbed = List.copyOf(absorbed);
        preActivations = Map.copyOf(preActivations);
    }
}
