package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every Spark job of a run carries its pass's job group and a description of what it does, as the Spark UI shows. */
class SparkJobNamesTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void everyJobHasItsPassGroupAndADescription() throws Exception {
        List<String[]> jobs = Collections.synchronizedList(new ArrayList<>());
        SparkListener listener = new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart e) {
                jobs.add(new String[] {e.properties().getProperty("spark.jobGroup.id"),
                        e.properties().getProperty("spark.job.description")});
            }
        };
        spark().sparkContext().addSparkListener(listener);
        try {
            QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("o").toString(),
                    "run-id=named", "pipeline=[fold-bn,calibrate,easyquant,adaround,bias-correct,export,evaluate]",
                    "quantization.activations.calibrator=percentile", "calibration.limit=24", "evaluation.limit=50",
                    "easyquant.samples=8", "easyquant.segments=6", "easyquant.rounds=1", "adaround.samples=4",
                    "adaround.iterations=10", "adaround.resume=false"), out);
            spark().sparkContext().listenerBus().waitUntilEmpty();
        } finally {
            spark().sparkContext().removeSparkListener(listener);
        }
        Map<String, Integer> perGroup = new TreeMap<>();
        for (String[] j : jobs) {
            Assertions.assertNotNull(j[0], "a job without a group: " + j[1]);
            Assertions.assertTrue(j[0].startsWith("quantcal-named-"), j[0]);
            Assertions.assertNotNull(j[1], "a job of " + j[0] + " without a description");
            perGroup.merge(j[0].substring("quantcal-named-".length()), 1, Integer::sum);
        }
        assertEquals(List.of("adaround", "bias-correct", "calibrate", "easyquant", "evaluate", "write"),
                new ArrayList<>(perGroup.keySet()), perGroup.toString());
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].startsWith("easyquant wave 1/") && j[1].contains(" candidates")));
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].equals("activation statistics, pass 2: histograms of 10 tensors (percentile)")),
                jobs.stream().map(j -> j[1]).distinct().toList().toString());
        Assertions.assertTrue(jobs.stream().anyMatch(j -> j[1].startsWith("adaround wave 1/") && j[1].contains("10 iterations each")));
        Assertions.assertNull(spark().sparkContext().getLocalProperty("spark.jobGroup.id"), "the group is cleared after the run");
    }
}
