package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.quantcal.job.pipeline.AdaRoundPass;
import io.quantcal.job.table.ScaleTable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * "Same inputs, same table whatever the partitioning" (DESIGN.md), for every pass that reads data: each case runs
 * the job on the bundled example with {@code calibration.partitions} = 1, 3 and 7 and asserts that the whole scale
 * table read back from Parquet — every column, metric_value and metric_baseline included, in row order, doubles
 * compared bit for bit — is the same; where a pass changes what the table does not show (bias-correct's biases,
 * AdaRound's integer weights) the exported QDQ model and the adaround_weights table are compared too.
 *
 * <p>The data is test-sized (a few dozen samples, small batches) so that 7 partitions cut the samples into pieces
 * of a few samples and ONNX Runtime batches of other sizes than 1 partition does.
 */
class PartitionInvarianceTest extends SparkJobTest {

    static final int[] PARTITIONS = {1, 3, 7};

    /**
     * 40 calibration samples in ONNX Runtime batches of 6. The images are sliced into contiguous partitions (ids
     * 0-12, 13-25, 26-39 for 3; 0-4, 5-10, ... for 7), so 1, 3 and 7 partitions batch the samples differently, and
     * the first 16 (EasyQuant's and AdaRound's search samples) span 2 and 3 partitions.
     */
    static final String[] SMALL = {"calibration.limit=40", "calibration.batch-size=6"};

    @TempDir
    Path tmp;

    /** What a run leaves that must not depend on the partitioning. */
    record Outcome(List<Row> table, byte[] qdq, List<Row> adaroundWeights) {}

    Outcome run(String name, int partitions, String... overrides) throws Exception {
        String output = tmp.resolve(name + "-p" + partitions).toString();
        long t0 = System.nanoTime();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output,
                JobFixtures.concat(JobFixtures.concat(SMALL, overrides), "calibration.partitions=" + partitions)), out);
        System.out.printf("%s, %d partition(s): %d ms, passes %s%n", name, partitions, (System.nanoTime() - t0) / 1_000_000,
                r.summary().get("timings_ms"));
        Path dir = AdaRoundPassTest.local(r.output());
        var df = spark().read().parquet(r.output() + "/" + QuantcalJob.SCALE_TABLE);
        assertEquals(ScaleTable.COLUMNS, Arrays.asList(df.columns()), "the table read back has the schema's columns");
        List<Row> table = df.collectAsList();
        Path qdq = dir.resolve("model_qdq.onnx");
        Path weights = dir.resolve(AdaRoundPass.WEIGHTS_TABLE);
        List<Row> codes = Files.exists(weights) ? spark().read().parquet(r.output() + "/" + AdaRoundPass.WEIGHTS_TABLE)
                .orderBy("tensor").collectAsList() : null;
        return new Outcome(table, Files.exists(qdq) ? Files.readAllBytes(qdq) : null, codes);
    }

    /** Runs the case with 1, 3 and 7 partitions, asserts every outcome equals the first, returns the first. */
    Outcome assertPartitionInvariant(String name, String... overrides) throws Exception {
        Outcome first = null;
        for (int p : PARTITIONS) {
            Outcome o = run(name, p, overrides);
            if (first == null) {
                first = o;
                Assertions.assertTrue(o.table().size() >= 21, name + ": " + o.table().size() + " rows, expected at least 3 per layer");
                for (Row r : o.table()) assertEquals("test-run", r.getString(1), "run_id is fixed by the test config");
                continue;
            }
            assertSameTable(name + ": 1 vs " + p + " partitions", first.table(), o.table());
            if (first.qdq() != null) assertArrayEquals(first.qdq(), o.qdq(), name + ": QDQ model, 1 vs " + p + " partitions");
            assertEquals(first.adaroundWeights(), o.adaroundWeights(), name + ": adaround_weights, 1 vs " + p + " partitions");
        }
        return first;
    }

    /** Exact equality of two tables, row by row in file order; on failure says how many rows differ, and in which columns. */
    static void assertSameTable(String what, List<Row> want, List<Row> got) {
        assertEquals(want.size(), got.size(), what + ": rows");
        Map<String, Integer> differing = new LinkedHashMap<>();
        List<String> examples = new ArrayList<>();
        int rows = 0;
        for (int i = 0; i < want.size(); i++) {
            boolean rowDiffers = false;
            for (int c = 0; c < ScaleTable.COLUMNS.size(); c++) {
                Object a = want.get(i).get(c), b = got.get(i).get(c);
                if (!exactlyEqual(a, b)) {
                    rowDiffers = true;
                    differing.merge(ScaleTable.COLUMNS.get(c), 1, Integer::sum);
                    if (examples.size() < 5) {
                        examples.add("row " + i + " (" + want.get(i).getString(4) + " channel " + want.get(i).getInt(9) + ") "
                                + ScaleTable.COLUMNS.get(c) + ": " + a + " vs " + b);
                    }
                }
            }
            if (rowDiffers) rows++;
        }
        assertEquals(0, rows, what + ": " + rows + " of " + want.size() + " rows differ, by column " + differing
                + "; e.g. " + examples);
    }

    /** Doubles bit for bit (so −0.0 ≠ 0.0 and every last bit counts), everything else by equals; null only equals null. */
    static boolean exactlyEqual(Object a, Object b) {
        if (a instanceof Double x && b instanceof Double y) return Double.doubleToRawLongBits(x) == Double.doubleToRawLongBits(y);
        return a == null ? b == null : a.equals(b);
    }

    static int column(String name) {
        return ScaleTable.COLUMNS.indexOf(name);
    }

    /** Rows of the given method have a metric; a table without metrics would compare trivially. */
    static void assertMetrics(Outcome o, String method) {
        long n = 0;
        for (Row r : o.table()) {
            if (!method.equals(r.getString(column("method"))) || r.getString(column("role")).equals("bias")) continue;
            assertNotNull(r.get(column("metric_value")), r.toString());
            assertNotNull(r.get(column("metric_baseline")), r.toString());
            n++;
        }
        Assertions.assertTrue(n > 0, "rows of method " + method);
    }

    @ParameterizedTest(name = "calibrate, activations {0}")
    @ValueSource(strings = {"minmax", "percentile", "entropy", "mse"})
    void calibrate(String calibrator) throws Exception {
        // weights are calibrated on the driver, data-free; mse (the costliest) once for coverage
        String weights = calibrator.equals("mse") ? "mse" : "minmax";
        Outcome o = assertPartitionInvariant("calibrate-" + calibrator, "pipeline=[fold-bn,calibrate,export]",
                "quantization.activations.calibrator=" + calibrator, "quantization.activations.percentile=99.9",
                "quantization.weights.calibrator=" + weights);
        long methods = o.table().stream().filter(r -> r.getString(column("method")).equals(calibrator)).count();
        Assertions.assertTrue(methods > 0, "rows of method " + calibrator);
    }

    @Test
    void easyquantSequential() throws Exception {
        // the default mode: later waves' inputs from the partial QDQ model; Conv layers on 12 positions per sample
        Outcome o = assertPartitionInvariant("easyquant-seq", JobFixtures.concat(EasyQuantPassTest.W7A7,
                "pipeline=[fold-bn,calibrate,easyquant,export]", "easyquant.mode=sequential", "easyquant.positions=12"));
        assertMetrics(o, "easyquant");
    }

    @Test
    void easyquantParallel() throws Exception {
        Outcome o = assertPartitionInvariant("easyquant-par", JobFixtures.concat(EasyQuantPassTest.W7A7,
                "pipeline=[fold-bn,calibrate,easyquant,export]", "easyquant.mode=parallel"));
        assertMetrics(o, "easyquant");
    }

    @Test
    void adaround() throws Exception {
        // quantized inputs (the default): several waves, each from a partial QDQ model; no resume between the runs
        Outcome o = assertPartitionInvariant("adaround", "quantization.weights.bits=4",
                "pipeline=[fold-bn,calibrate,adaround,export]", "adaround.samples=16", "adaround.iterations=60",
                "adaround.resume=false");
        assertMetrics(o, "adaround");
        assertEquals(7, o.adaroundWeights().size());
    }

    @Test
    void biasCorrectEmpirical() throws Exception {
        // (analytic bias correction reads no data.) The corrected biases are not in the table: the QDQ model that
        // holds them is compared byte for byte.
        Outcome o = assertPartitionInvariant("bias-correct", "quantization.weights.granularity=per-tensor",
                "pipeline=[fold-bn,calibrate,bias-correct,export]", "dfq.bias-correction=empirical");
        assertNotNull(o.qdq());
    }
}
