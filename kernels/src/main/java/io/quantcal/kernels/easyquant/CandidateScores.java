package io.quantcal.kernels.easyquant;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The result of evaluating a candidate block on a chunk of samples: for each candidate (and, for
 * per-channel weight candidates, each output channel) the sum over the chunk's samples of the per-sample
 * cosine cos(O_i, Ô_i), summed in sample-id order; with the ids, so partial results merge in key order.
 *
 * @param sampleIds   the samples summed over, strictly increasing
 * @param cosineSums  [candidate][channel], or [candidate][0] when the score is over the whole output
 */
public record CandidateScores(long[] sampleIds, double[][] cosineSums) implements Serializable {

    public CandidateScores {
        for (int i = 1; i < sampleIds.length; i++) {
            if (sampleIds[i] <= sampleIds[i - 1]) {
                throw new IllegalArgumentException("CandidateScores: sample ids must be strictly increasing, got "
                        + sampleIds[i - 1] + " then " + sampleIds[i]);
            }
        }
    }

    public int count() {
        return sampleIds.length;
    }

    public int candidates() {
        return cosineSums.length;
    }

    /** The cosine sum of {@code candidate} for {@code channel} (0 for a whole-output score). */
    public double sum(int candidate, int channel) {
        return cosineSums[candidate][channel];
    }

    /**
     * Adds partial results of the same block over disjoint sample chunks, chunk by chunk in order of their
     * first sample id (the driver's reduce), so the same chunks give the same sums whatever the task order.
     * Other chunks of the same samples can differ in the last bits (floating-point addition does not
     * associate): for sums that do not depend on the partitioning, the chunks must not either.
     */
    public static CandidateScores merge(List<CandidateScores> parts) {
        if (parts.isEmpty()) throw new IllegalArgumentException("CandidateScores.merge: nothing to merge");
        List<CandidateScores> sorted = new ArrayList<>(parts);
        sorted.removeIf(p -> p.count() == 0);
        if (sorted.isEmpty()) return parts.get(0);
        sorted.sort(Comparator.comparingLong(p -> p.sampleIds[0]));
        CandidateScores first = sorted.get(0);
        double[][] sums = new double[first.cosineSums.length][];
        for (int c = 0; c < sums.length; c++) sums[c] = new double[first.cosineSums[c].length];
        long[] ids = new long[sorted.stream().mapToInt(CandidateScores::count).sum()];
        int at = 0;
        for (CandidateScores p : sorted) {
            if (p.cosineSums.length != sums.length || (sums.length > 0 && p.cosineSums[0].length != sums[0].length)) {
                throw new IllegalArgumentException("CandidateScores.merge: parts of different blocks ("
                        + sums.length + " vs " + p.cosineSums.length + " candidates)");
            }
            if (at > 0 && p.sampleIds[0] <= ids[at - 1]) {
                throw new IllegalArgumentException("CandidateScores.merge: sample chunks overlap at sample id " + p.sampleIds[0]);
            }
            System.arraycopy(p.sampleIds, 0, ids, at, p.count());
            at += p.count();
            for (int c = 0; c < sums.length; c++) {
                for (int k = 0; k < sums[c].length; k++) sums[c][k] += p.cosineSums[c][k];
            }
        }
        return new CandidateScores(ids, sums);
    }

    @Override
    public String toString() {
        return "CandidateScores[" + count() + " samples, " + Arrays.deepToString(cosineSums) + "]";
    }
}
