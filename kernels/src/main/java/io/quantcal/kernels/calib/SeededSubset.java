package io.quantcal.kernels.calib;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A reproducible subset of indices: the capture steps keep some positions or patch columns of each sample, chosen
 * by a seed derived from the sample itself, so the choice does not depend on where the sample was processed.
 */
public final class SeededSubset {

    private SeededSubset() {}

    /** {@code k} distinct indices of [0, n), ascending: a partial Fisher–Yates shuffle seeded by {@code seed}. */
    public static int[] choose(int n, int k, long seed) {
        if (k < 0 || k > n) throw new IllegalArgumentException("SeededSubset: cannot choose " + k + " of " + n);
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < k; i++) {
            int j = i + r.nextInt(n - i);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        int[] out = Arrays.copyOf(idx, k);
        Arrays.sort(out);
        return out;
    }
}
