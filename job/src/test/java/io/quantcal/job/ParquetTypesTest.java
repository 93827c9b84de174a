package io.quantcal.job;

import static io.quantcal.job.JobFixtures.RESNET;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.table.ScaleRow;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parquet samples of the wrong type stop the run before any task with the data set, the column, its type and what
 * was expected (and an example value with its part file and row); a bad row stops it naming the part file, the row,
 * the column, what it holds and what was expected; integer arrays are read as the numbers they hold.
 */
class ParquetTypesTest extends SparkJobTest {

    static final int SIZE = 784; // 1 x 28 x 28, the example's preprocessing

    @TempDir
    Path tmp;

    /** 8 rows of (features, label) with the given Spark types, written as one part file. */
    Path write(String name, DataType features, IntFunction<Object> value, DataType label, IntFunction<Object> labelOf) {
        StructType schema = new StructType().add("features", features).add("label", label);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < 8; i++) rows.add(RowFactory.create(value.apply(i), labelOf.apply(i)));
        Path p = tmp.resolve(name);
        spark().createDataFrame(rows, schema).coalesce(1).write().parquet(p.toString());
        return p;
    }

    /** The example's input values as small integers, so that int, long and float arrays hold the same numbers. */
    static List<Number> pixels(int row, IntFunction<Number> box) {
        List<Number> v = new ArrayList<>(SIZE);
        for (int j = 0; j < SIZE; j++) v.add(box.apply((row * 7 + j * 13) % 5 - 2));
        return v;
    }

    QuantcalConfig config(Path data, String output, String... more) {
        List<String> o = new ArrayList<>(List.of("pipeline=[calibrate]", "calibration.format=parquet"));
        o.addAll(List.of(more));
        return JobFixtures.config(RESNET, data.toString(), tmp.resolve(output).toString(), o.toArray(new String[0]));
    }

    String fail(QuantcalConfig cfg) {
        RuntimeException e = Assertions.assertThrows(RuntimeException.class, () -> QuantcalJob.run(spark(), cfg, out));
        Assertions.assertFalse(Files.exists(Path.of(cfg.outputPath())), "a failed run leaves no output");
        String reason = Cli.reason(e);
        Assertions.assertEquals(1, reason.lines().count(), reason);
        return reason;
    }

    @Test
    void aColumnOfStringsIsNamedWithItsTypeAndAnExampleBeforeAnyTask() {
        Path p = write("strings.parquet", DataTypes.StringType, i -> "0.5,0.25,0.125", DataTypes.IntegerType, i -> i);
        String msg = fail(config(p, "o1"));
        Assertions.assertTrue(msg.contains("Parquet calibration data file:" + p) && msg.contains("column 'features'")
                && msg.contains("quantcal.calibration.parquet.column") && msg.contains("is of type string"), msg);
        Assertions.assertTrue(msg.contains("row 0 holds \"0.5,0.25,0.125\"") && msg.contains("part file part-00000-"), msg);
        Assertions.assertTrue(msg.contains("expected an array of numbers") && msg.contains("784 values per row"), msg);
    }

    @Test
    void aScalarDoubleAndAnArrayOfStringsAreNamed() {
        Path p = write("scalar.parquet", DataTypes.DoubleType, i -> 0.5 * i, DataTypes.IntegerType, i -> i);
        String msg = fail(config(p, "o2"));
        Assertions.assertTrue(msg.contains(p.toString()) && msg.contains("column 'features'")
                && msg.contains("is a scalar double (one number per row, not an array)")
                && msg.contains("expected an array of numbers"), msg);

        Path q = write("string-array.parquet", DataTypes.createArrayType(DataTypes.StringType),
                i -> List.of("1", "2"), DataTypes.IntegerType, i -> i);
        msg = fail(config(q, "o3"));
        Assertions.assertTrue(msg.contains(q.toString()) && msg.contains("is an array of string (array<string>)")
                && msg.contains("expected an array of numbers"), msg);
    }

    @Test
    void aStringLabelColumnIsNamedAndTheCliExitsOne() throws Exception {
        Path p = write("string-label.parquet", DataTypes.createArrayType(DataTypes.FloatType),
                i -> pixels(i, x -> (float) x), DataTypes.StringType, i -> "class-" + i);
        Path conf = tmp.resolve("c.conf");
        Files.writeString(conf, JobFixtures.baseConfig(RESNET, p.toString(), tmp.resolve("o4").toString()));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(new String[] {"run", conf.toString(), "pipeline=[calibrate]", "calibration.format=parquet"},
                out, new PrintStream(err, true, StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8).strip();
        Assertions.assertEquals(1, code, e);
        Assertions.assertEquals(1, e.lines().count(), "one-line reason: " + e);
        Assertions.assertTrue(e.startsWith("quantcal: error: Parquet calibration data file:" + p), e);
        Assertions.assertTrue(e.contains("label column 'label' (quantcal.calibration.parquet.label-column) is of type string")
                && e.contains("row 0 holds \"class-0\"") && e.contains("expected an integer column"), e);
        Assertions.assertFalse(Files.exists(tmp.resolve("o4")));
    }

    @Test
    void aRowOfTheWrongLengthNamesPartFileRowColumnAndExpectedLength() {
        Path p = write("short-row.parquet", DataTypes.createArrayType(DataTypes.FloatType),
                i -> i == 5 ? List.of(1f, 2f, 3f) : pixels(i, x -> (float) x), DataTypes.IntegerType, i -> i);
        String msg = fail(config(p, "o5"));
        Assertions.assertTrue(msg.startsWith("Parquet calibration data file:" + p + ", column 'features', part file part-00000-"), msg);
        Assertions.assertTrue(msg.contains(".parquet row 5 has 3 values, expected 784"), msg);
    }

    @Test
    void intAndLongArraysAreReadAsTheNumbersTheyHold() {
        Path f = write("float.parquet", DataTypes.createArrayType(DataTypes.FloatType),
                i -> pixels(i, x -> (float) x), DataTypes.IntegerType, i -> i);
        Path n = write("int.parquet", DataTypes.createArrayType(DataTypes.IntegerType),
                i -> pixels(i, x -> x), DataTypes.LongType, i -> (long) i);
        Path l = write("long.parquet", DataTypes.createArrayType(DataTypes.LongType),
                i -> pixels(i, x -> (long) x), DataTypes.IntegerType, i -> i);
        List<ScaleRow> floats = QuantcalJob.run(spark(), config(f, "of"), out).rows();
        Assertions.assertFalse(floats.isEmpty());
        Assertions.assertTrue(floats.stream().anyMatch(r -> r.role().equals("activation") && r.scale() > 0));
        Assertions.assertEquals(floats, QuantcalJob.run(spark(), config(n, "oi"), out).rows(), "int32 array vs float array");
        Assertions.assertEquals(floats, QuantcalJob.run(spark(), config(l, "ol"), out).rows(), "int64 array vs float array");
    }

    @Test
    void evaluationDataAreNamedAsSuch() {
        Path good = write("eval-good.parquet", DataTypes.createArrayType(DataTypes.FloatType),
                i -> pixels(i, x -> (float) x), DataTypes.IntegerType, i -> i);
        Path bad = write("eval-bad.parquet", DataTypes.createArrayType(DataTypes.DoubleType),
                i -> pixels(i, x -> (double) x), DataTypes.DoubleType, i -> (double) i);
        String msg = fail(config(good, "o6", "pipeline=[calibrate, evaluate]", "evaluation.format=parquet",
                "evaluation.path=" + bad));
        Assertions.assertTrue(msg.startsWith("Parquet evaluation data file:" + bad + ": label column 'label'"), msg);
        Assertions.assertTrue(msg.contains("is of type double") && msg.contains("expected an integer column"), msg);
    }
}
