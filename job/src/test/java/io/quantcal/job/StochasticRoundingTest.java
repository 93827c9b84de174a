package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import io.quantcal.job.config.ConfigException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quantization.weights.rounding = stochastic} with 3 draws per layer on the bundled ResNet at W4: the same
 * table and QDQ model for 1 and 3 partitions; each weight row says stochastic with the lowest of its layer's three
 * draws' MSEs and rounding to nearest's as baseline; the QDQ model's codes are a stochastic rounding of W/s (floor or
 * ceiling, not all nearest). Stochastic rounding with adaround or learn in the pipeline is a config error.
 */
class StochasticRoundingTest extends SparkJobTest {

    static final String[] SR = {"quantization.weights.bits=4", "pipeline=[fold-bn,calibrate,export]",
            "quantization.weights.rounding=stochastic", "quantization.weights.rounding-draws=3",
            "quantization.weights.rounding-samples=8", "calibration.limit=40", "calibration.batch-size=6"};

    @TempDir
    Path tmp;

    @Test
    void bestOfThreeDrawsSameForAnyPartitioning() throws Exception {
        QuantcalJob.Result one = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("p1").toString(),
                JobFixtures.concat(SR, "calibration.partitions=1")), out);
        QuantcalJob.Result three = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, tmp.resolve("p3").toString(),
                JobFixtures.concat(SR, "calibration.partitions=3")), out);
        List<Row> t1 = spark().read().parquet(one.output() + "/" + QuantcalJob.SCALE_TABLE).collectAsList();
        List<Row> t3 = spark().read().parquet(three.output() + "/" + QuantcalJob.SCALE_TABLE).collectAsList();
        PartitionInvarianceTest.assertSameTable("stochastic rounding: 1 vs 3 partitions", t1, t3);
        Path d1 = AdaRoundPassTest.local(one.output()), d3 = AdaRoundPassTest.local(three.output());
        assertArrayEquals(Files.readAllBytes(d1.resolve("model_qdq.onnx")), Files.readAllBytes(d3.resolve("model_qdq.onnx")));

        JsonNode layers = AdaRoundPassTest.runJson(one.output()).at("/passes/stochastic_rounding/layers");
        assertEquals(7, layers.size());
        OnnxModel model = OnnxModel.load(Path.of(RESNET));
        OnnxModel qdq = OnnxModel.load(d1.resolve("model_qdq.onnx"));
        int notNearest = 0;
        for (QuantizableNode n : model.quantizableNodes()) {
            JsonNode l = layers.get(n.name());
            double min = Double.POSITIVE_INFINITY;
            assertEquals(3, l.get("mse_draws").size(), n.name());
            for (JsonNode m : l.get("mse_draws")) min = Math.min(min, m.asDouble());
            assertEquals(min, l.get("mse_best").asDouble(), n.name());
            for (Row r : t1) {
                if (!r.getString(PartitionInvarianceTest.column("node")).equals(n.name())
                        || !r.getString(PartitionInvarianceTest.column("role")).equals("weight")) continue;
                assertEquals("stochastic", r.getString(PartitionInvarianceTest.column("method")));
                assertEquals("mse", r.getString(PartitionInvarianceTest.column("metric")));
                assertEquals(min, r.getDouble(PartitionInvarianceTest.column("metric_value")), n.name());
                assertEquals(l.get("mse_nearest").asDouble(), r.getDouble(PartitionInvarianceTest.column("metric_baseline")));
            }
        }
        // the codes: floor or ceiling of W/s with the table's scales (BatchNorm folded, as the run did)
        OnnxModel folded = io.quantcal.kernels.onnx.BatchNormFolder.fold(model).model();
        for (QuantizableNode n : folded.quantizableNodes()) {
            int[] q = JobFixtures.weightCodes(qdq, n.weight() + "_quantized");
            float[] w = folded.initializerFloats(n.weight());
            float[] s = qdq.initializerFloats(n.weight() + "_scale");
            int inner = w.length / s.length;
            for (int i = 0; i < w.length; i++) {
                // per output channel: axis 0 (Conv, Gemm with transB) or axis 1 (Gemm without)
                float v = w[i] / s[n.weightAxis() == 0 ? i / inner : i % s.length];
                Assertions.assertTrue(q[i] == Math.max(-7, Math.floor(v)) || q[i] == Math.min(7, Math.ceil(v)),
                        n.name() + ": code " + q[i] + " for w/s = " + v);
                if (q[i] != (int) Math.max(-7, Math.min(7, Math.rint(v)))) notNearest++;
            }
        }
        Assertions.assertTrue(notNearest > 100, notNearest + " codes differ from rounding to nearest");
    }

    @Test
    void notWithPassesThatChooseTheCodes() {
        for (String p : List.of("adaround", "learn")) {
            ConfigException e = assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB, "out",
                    "quantization.weights.rounding=stochastic", "pipeline=[fold-bn,calibrate," + p + ",export]"));
            Assertions.assertTrue(e.getMessage().contains("quantcal.quantization.weights.rounding")
                    && e.getMessage().contains(p), e.getMessage());
        }
        for (String[] c : new String[][] {{"quantization.weights.rounding=random", "quantcal.quantization.weights.rounding"},
                {"quantization.weights.rounding-draws=0", "quantcal.quantization.weights.rounding-draws"},
                {"quantization.weights.rounding-samples=0", "quantcal.quantization.weights.rounding-samples"}}) {
            ConfigException e = assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB, "out", c[0]));
            Assertions.assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
