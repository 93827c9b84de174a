package io.quantcal.job.pipeline;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.BinaryOperator;
import org.apache.spark.api.java.JavaPairRDD;
import scala.Tuple2;

/**
 * Reduces per-sample partial results in sample-id order, so that a floating-point sum over the samples is the same
 * bit for bit for any partitioning (floating-point addition does not associate: partition sums merged in partition
 * order change with the partition boundaries). The partials, keyed by sample id, go to fixed chunks of
 * {@link #CHUNK} consecutive ids; an executor folds each chunk in id order, the driver folds the chunks' results in
 * chunk order. So the grouping of the additions is fixed by the ids alone, the executors do the per-sample work and
 * the driver only sees one small partial per chunk.
 */
final class SampleOrder {

    /** Sample ids per chunk of the fixed grouping. */
    static final long CHUNK = 64;

    private SampleOrder() {}

    /** How two partials combine (shipped to the executors). */
    interface Merge<T> extends BinaryOperator<T>, Serializable {}

    /**
     * ((p_a ⊕ p_a+1) ⊕ …) per chunk, then (c_0 ⊕ c_1) ⊕ … over the chunks, ⊕ = {@code merge}; null when there is no
     * partial. Sample ids must be unique.
     */
    static <T extends Serializable> T reduce(JavaPairRDD<Long, T> perSample, Merge<T> merge) {
        List<Tuple2<Long, T>> chunks = new ArrayList<>(perSample
                .mapToPair(t -> new Tuple2<>(t._1() / CHUNK, t))
                .groupByKey(perSample.getNumPartitions())
                .mapValues(group -> {
                    List<Tuple2<Long, T>> l = new ArrayList<>();
                    group.forEach(l::add);
                    l.sort(Comparator.comparing(Tuple2::_1));
                    return fold(l, merge);
                }).collect());
        chunks.sort(Comparator.comparing(Tuple2::_1));
        return chunks.isEmpty() ? null : fold(chunks, merge);
    }

    private static <T> T fold(List<Tuple2<Long, T>> sorted, Merge<T> merge) {
        T acc = sorted.get(0)._2();
        for (int i = 1; i < sorted.size(); i++) {
            if (sorted.get(i)._1().equals(sorted.get(i - 1)._1())) {
                throw new IllegalStateException("SampleOrder: two partial results for sample id " + sorted.get(i)._1());
            }
            acc = merge.apply(acc, sorted.get(i)._2());
        }
        return acc;
    }
}
