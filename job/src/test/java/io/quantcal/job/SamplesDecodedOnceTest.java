package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The calibration samples are decoded once per run, however many passes read them: calibrate, easyquant, adaround
 * and bias-correct each read the example's images (which they decoded again before, 4 × 40 = 160 decodings here).
 */
class SamplesDecodedOnceTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void fourPassesDecodeTheCalibrationImagesOnce() {
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("out").toString(),
                "calibration.limit=40", "calibration.partitions=3",
                "pipeline=[fold-bn, calibrate, easyquant, adaround, bias-correct, export]", "easyquant.samples=8",
                "easyquant.mode=parallel", "adaround.inputs=fp",
                "easyquant.segments=8", "easyquant.rounds=1", "adaround.samples=8", "adaround.iterations=20"), out);
        assertEquals(40L, ((Number) r.summary().get("calibration_samples_decoded")).longValue(), r.summary().toString());
        @SuppressWarnings("unchecked")
        Map<String, Object> passes = (Map<String, Object>) r.summary().get("passes");
        assertEquals(java.util.Set.of("fold-bn", "calibrate", "easyquant", "adaround", "bias-correct", "export"),
                passes.keySet(), "every pass ran");
    }
}
