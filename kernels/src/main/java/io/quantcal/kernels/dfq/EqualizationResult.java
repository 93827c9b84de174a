package io.quantcal.kernels.dfq;

import java.io.Serializable;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What cross-layer equalization did, for the run summary: the scales per pair, how many sweeps it took,
 * and whether a ReLU6 (Clip(0, c)) was treated as a ReLU, which changes the FP function.
 *
 * @param pairs              the equalized pairs in graph order
 * @param iterations         sweeps over all pairs performed
 * @param converged          whether the last sweep changed no scale by more than the tolerance
 * @param relu6TreatedAsRelu whether some equalized pair had a bounded Clip(0, c) between its layers
 */
public record EqualizationResult(List<PairScales> pairs, int iterations, boolean converged,
                                 boolean relu6TreatedAsRelu) implements Serializable {

    public EqualizationResult {
        pairs = List.copyOf(pairs);
    }

    /**
     * The pre-activation statistics after equalization: a layer 1 output channel divided by sᵢ has
     * pre-activation N(βᵢ/sᵢ, (γᵢ/sᵢ)²). Entries for convs that were not a layer 1 pass unchanged.
     */
    public Map<String, PreActivation> rescale(Map<String, PreActivation> stats) {
        Map<String, PairScales> byConv1 = new HashMap<>();
        for (PairScales p : pairs) byConv1.put(p.conv1(), p);
        Map<String, PreActivation> out = new LinkedHashMap<>();
        for (var e : stats.entrySet()) {
            PairScales p = byConv1.get(e.getKey());
            out.put(e.getKey(), p == null ? e.getValue() : e.getValue().dividedBy(p.scales()));
        }
        return out;
    }
}
