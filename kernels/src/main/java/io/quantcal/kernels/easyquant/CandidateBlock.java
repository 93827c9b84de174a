package io.quantcal.kernels.easyquant;

import java.io.Serializable;

/**
 * A block of candidate scales for one side of one layer, with the other side's scales held fixed: what a
 * (layer, candidate block, data chunk) task evaluates. Scales only; grids and zero points come from the
 * {@link LayerProblem}'s templates.
 *
 * @param side        the side whose scales vary
 * @param fixedScales the other side's scales (one, or one per weight channel)
 * @param candidates  [candidate][channel]: one scale per candidate for a per-tensor side; for per-channel
 *                    weights, candidate k gives every channel c its own scale (grid_c[k] in the search)
 */
public record CandidateBlock(SearchSide side, double[] fixedScales, double[][] candidates) implements Serializable {

    public CandidateBlock {
        if (side == null || fixedScales == null || candidates == null || candidates.length == 0) {
            throw new IllegalArgumentException("CandidateBlock: side, fixed scales and at least one candidate are required");
        }
        fixedScales = fixedScales.clone();
        double[][] c = new double[candidates.length][];
        for (int i = 0; i < c.length; i++) {
            if (candidates[i] == null || candidates[i].length != candidates[0].length) {
                throw new IllegalArgumentException("CandidateBlock: candidate " + i + " must have "
                        + candidates[0].length + " scales like candidate 0");
            }
            c[i] = candidates[i].clone();
        }
        candidates = c;
    }

    /** One per-tensor candidate per value. */
    public static CandidateBlock perTensor(SearchSide side, double[] fixedScales, double... scales) {
        double[][] c = new double[scales.length][];
        for (int i = 0; i < scales.length; i++) c[i] = new double[] {scales[i]};
        return new CandidateBlock(side, fixedScales, c);
    }

    public int size() {
        return candidates.length;
    }

    @Override
    public double[] fixedScales() {
        return fixedScales.clone();
    }

    @Override
    public double[][] candidates() {
        double[][] c = new double[candidates.length][];
        for (int i = 0; i < c.length; i++) c[i] = candidates[i].clone();
        return c;
    }

    double[] candidate(int i) {
        return candidates[i];
    }

    double[] fixed() {
        return fixedScales;
    }
}
