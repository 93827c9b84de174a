package io.quantcal.job.pipeline;

import org.apache.spark.Partitioner;

/**
 * Integer key k goes to partition k: one task per keyed piece of work (AdaRound: a layer of the wave; EasyQuant: a
 * (layer, chunk) problem). Keys must lie in [0, n).
 */
final class IndexPartitioner extends Partitioner {

    private final int n;

    IndexPartitioner(int n) {
        this.n = n;
    }

    @Override
    public int numPartitions() {
        return n;
    }

    @Override
    public int getPartition(Object key) {
        return (Integer) key;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof IndexPartitioner p && p.n == n;
    }

    @Override
    public int hashCode() {
        return n;
    }
}
