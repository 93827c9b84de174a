package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.holdenkarau.spark.testing.JavaDataFrameSuiteBase;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import scala.Tuple2;

/**
 * {@link SampleOrder}: a sum of per-sample doubles is the same bit for bit for 1, 3 and 7 partitions and equals the
 * fixed grouping (chunks of 64 ids in id order, then the chunks in order), where partition sums merged in partition
 * order differ in the last bits.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SampleOrderTest extends JavaDataFrameSuiteBase {

    @BeforeAll
    void startSpark() {
        runBefore();
    }

    @AfterAll
    static void stopSpark() {
        runAfterClass();
    }

    /** 300 samples with ids 0..299 (a gap at 150, as a skipped sample leaves), values spread over magnitudes. */
    static List<Tuple2<Long, Double>> samples() {
        Random r = new Random(7);
        List<Tuple2<Long, Double>> l = new ArrayList<>();
        for (long id = 0; id < 300; id++) {
            if (id == 150) continue;
            l.add(new Tuple2<>(id, (r.nextDouble() - 0.3) * Math.pow(10, r.nextInt(8))));
        }
        return l;
    }

    JavaPairRDD<Long, Double> rdd(List<Tuple2<Long, Double>> l, int partitions) {
        return JavaSparkContext.fromSparkContext(spark().sparkContext()).parallelizePairs(l, partitions);
    }

    @Test
    void sumIsTheFixedGroupingsForAnyPartitioning() {
        List<Tuple2<Long, Double>> l = samples();
        double want = 0;
        for (long c = 0; c * SampleOrder.CHUNK < 300; c++) {
            double chunk = Double.NaN;
            for (Tuple2<Long, Double> t : l) {
                if (t._1() / SampleOrder.CHUNK != c) continue;
                chunk = Double.isNaN(chunk) ? t._2() : chunk + t._2();
            }
            want = c == 0 ? chunk : want + chunk;
        }
        boolean partitionOrderDiffers = false;
        double onePartition = Double.NaN;
        for (int p : new int[] {1, 3, 7}) {
            // input shuffled: the order within and across partitions does not matter either
            List<Tuple2<Long, Double>> shuffled = new ArrayList<>(l);
            java.util.Collections.shuffle(shuffled, new Random(p));
            double got = SampleOrder.reduce(rdd(shuffled, p), Double::sum);
            assertEquals(Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(got), p + " partitions: " + got + " vs " + want);

            // what merging partition sums in partition order gives (the defect SampleOrder removes)
            List<Double> parts = rdd(l, p).values().mapPartitions(it -> {
                double s = 0;
                while (it.hasNext()) s += it.next();
                return List.of(s).iterator();
            }).collect();
            double byPartition = 0;
            for (double s : parts) byPartition += s;
            if (p == 1) onePartition = byPartition;
            else if (byPartition != onePartition) partitionOrderDiffers = true;
        }
        Assertions.assertTrue(partitionOrderDiffers, "the data is such that partition sums merged in partition order differ");
    }

    @Test
    void emptyGivesNullAndADuplicateIdIsAnError() {
        assertNull(SampleOrder.reduce(rdd(List.of(), 2), Double::sum));
        // thrown in the task that folds the chunk: Spark reports it with the cause's message
        Exception e = Assertions.assertThrows(Exception.class, () -> SampleOrder.reduce(
                rdd(List.of(new Tuple2<>(3L, 1.0), new Tuple2<>(5L, 1.0), new Tuple2<>(3L, 2.0)), 2), Double::sum));
        Assertions.assertTrue(e.getMessage().contains("sample id 3"), e.getMessage());
    }
}
