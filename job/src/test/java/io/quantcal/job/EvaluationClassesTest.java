package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.EVAL;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An evaluation directory that lacks a class: labels keep the class index of the calibration data (not a shifted
 * one that made every label wrong and top-1 0.00%), and the run warns naming the missing class.
 */
class EvaluationClassesTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    @SuppressWarnings("unchecked")
    void aMissingClassDirectoryIsNamedAndDoesNotShiftTheLabels() throws Exception {
        Path eval = tmp.resolve("eval");
        try (Stream<Path> classes = Files.list(Path.of(EVAL)).sorted()) {
            for (Path c : classes.toList()) {
                if (c.getFileName().toString().equals("0-tshirt")) continue; // the missing class shifts every other label
                Files.createDirectories(eval.resolve(c.getFileName()));
                try (Stream<Path> s = Files.list(c).sorted().limit(10)) {
                    for (Path p : s.toList()) Files.copy(p, eval.resolve(c.getFileName()).resolve(p.getFileName()));
                }
            }
        }
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("out").toString(),
                "evaluation.path=" + eval, "evaluation.limit=0", "calibration.limit=50"), out);
        Map<String, Object> ev = (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get("evaluate");
        assertEquals(90L, ((Number) ev.get("samples")).longValue());
        double top1 = (double) ev.get("top1_fp32");
        Assertions.assertTrue(top1 > 0.7, "labels follow the calibration classes: FP32 top-1 " + top1);
        List<String> warnings = (List<String>) ev.get("warnings");
        assertEquals(1, warnings.size(), warnings.toString());
        Assertions.assertTrue(warnings.get(0).contains("has no class directory for [0-tshirt] (present in the calibration data)"),
                warnings.get(0));
        Assertions.assertTrue(console.toString(java.nio.charset.StandardCharsets.UTF_8).contains("evaluate: warning: "));
    }
}
