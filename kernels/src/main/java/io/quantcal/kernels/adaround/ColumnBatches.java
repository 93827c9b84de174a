package io.quantcal.kernels.adaround;

import java.util.SplittableRandom;

/**
 * The column batches of a layer-reconstruction optimizer (AdaRound, LSQ, QIL): each batch is B distinct columns of
 * the problem, the first B steps of a Fisher–Yates shuffle, continued on the same permutation from batch to batch.
 * Seeded, so the same seed gives the same batches.
 */
public final class ColumnBatches {

    private final int[] perm;
    private final int[] cols;
    private final SplittableRandom random;

    public ColumnBatches(int columns, int batch, long seed) {
        perm = new int[columns];
        for (int i = 0; i < columns; i++) perm[i] = i;
        cols = new int[batch];
        random = new SplittableRandom(seed);
    }

    /** The next batch's column indices (the array is reused: read it before the next call). */
    public int[] next() {
        int columns = perm.length;
        for (int j = 0; j < cols.length; j++) {
            int r = j + random.nextInt(columns - j);
            int tmp = perm[j];
            perm[j] = perm[r];
            perm[r] = tmp;
            cols[j] = perm[j];
        }
        return cols;
    }
}
