package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.config.QuantcalConfig;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input stops the run with the file, row or key named, exit code 1, and no output. */
class BadInputTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /** A small images directory: 12 real calibration images in two classes, plus {@code extra} files. */
    Path images(String name) throws IOException {
        Path dir = tmp.resolve(name);
        for (String cls : List.of("0-tshirt", "1-trouser")) {
            Files.createDirectories(dir.resolve(cls));
            try (Stream<Path> s = Files.list(Path.of(CALIB, cls)).sorted().limit(6)) {
                for (Path p : s.toList()) Files.copy(p, dir.resolve(cls).resolve(p.getFileName()));
            }
        }
        return dir;
    }

    String fail(QuantcalConfig cfg) {
        RuntimeException e = assertThrows(RuntimeException.class, () -> QuantcalJob.run(spark(), cfg, out));
        assertFalse(Files.exists(Path.of(cfg.outputPath())), "a failed run leaves no output");
        try (Stream<Path> s = Files.list(Path.of(cfg.outputPath()).getParent())) {
            Assertions.assertTrue(s.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "no temporary directory left");
        } catch (IOException io) {
            throw new RuntimeException(io);
        }
        return Cli.reason(e);
    }

    @Test
    void brokenImageIsNamedOrSkippedAndCounted() throws Exception {
        Path dir = images("broken");
        Path bad = dir.resolve("1-trouser/99999.png");
        Files.write(bad, new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        String msg = fail(JobFixtures.config(RESNET, dir.toString(), tmp.resolve("out1").toString(), "pipeline=[calibrate]"));
        Assertions.assertTrue(msg.contains("99999.png") && msg.contains("cannot be decoded"), msg);
        Assertions.assertTrue(msg.contains("skip-bad-samples"), msg);

        String output = tmp.resolve("out2").toString();
        QuantcalJob.run(spark(), JobFixtures.config(RESNET, dir.toString(), output, "pipeline=[calibrate]",
                "calibration.skip-bad-samples=true"), out);
        var run = new ObjectMapper().readTree(Path.of(output, "run.json").toFile()).get("passes").get("calibrate");
        assertEquals(12, run.get("samples").asInt());
        assertEquals(1, run.get("skipped_samples").asInt());
        Assertions.assertTrue(run.get("skipped").get(0).asText().contains("99999.png"));
    }

    @Test
    void imageTooSmallForTheCropIsNamed() throws Exception {
        Path dir = images("small");
        ImageIO.write(new BufferedImage(10, 12, BufferedImage.TYPE_BYTE_GRAY), "png", dir.resolve("0-tshirt/small.png").toFile());
        String msg = fail(JobFixtures.config(RESNET, dir.toString(), tmp.resolve("out3").toString(), "pipeline=[calibrate]"));
        Assertions.assertTrue(msg.contains("small.png is 10x12") && msg.contains("expected at least 28x28"), msg);
    }

    void writeParquet(Path path, List<float[]> rows) {
        StructType schema = new StructType().add("features", DataTypes.createArrayType(DataTypes.FloatType))
                .add("label", DataTypes.IntegerType);
        List<Row> data = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            Float[] boxed = new Float[rows.get(i).length];
            for (int j = 0; j < boxed.length; j++) boxed[j] = rows.get(i)[j];
            data.add(RowFactory.create(Arrays.asList(boxed), i % 10));
        }
        spark().createDataFrame(data, schema).coalesce(1).write().parquet(path.toString());
    }

    @Test
    void parquetSamplesWorkAndNanOrWrongSizeRowsAreNamed() throws Exception {
        List<float[]> rows = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            float[] v = new float[784];
            for (int j = 0; j < v.length; j++) v[j] = (float) Math.sin(i * 784 + j);
            rows.add(v);
        }
        Path good = tmp.resolve("good.parquet");
        writeParquet(good, rows);
        String output = tmp.resolve("pq").toString();
        QuantcalJob.run(spark(), JobFixtures.config(RESNET, good.toString(), output, "pipeline=[calibrate]",
                "calibration.format=parquet"), out);
        Assertions.assertTrue(Files.exists(Path.of(output, QuantcalJob.SCALE_TABLE)));

        rows.get(5)[17] = Float.NaN;
        Path nan = tmp.resolve("nan.parquet");
        writeParquet(nan, rows);
        String msg = fail(JobFixtures.config(RESNET, nan.toString(), tmp.resolve("out4").toString(),
                "pipeline=[calibrate]", "calibration.format=parquet"));
        Assertions.assertTrue(msg.contains("row 5") && msg.contains("non-finite value (NaN) at index 17"), msg);

        rows.set(5, new float[10]);
        Path small = tmp.resolve("short.parquet");
        writeParquet(small, rows);
        msg = fail(JobFixtures.config(RESNET, small.toString(), tmp.resolve("out5").toString(),
                "pipeline=[calibrate]", "calibration.format=parquet"));
        Assertions.assertTrue(msg.contains("row 5 has 10 values, expected 784"), msg);

        msg = fail(JobFixtures.config(RESNET, good.toString(), tmp.resolve("out6").toString(),
                "pipeline=[calibrate]", "calibration.format=parquet", "calibration.parquet.column=pixels"));
        Assertions.assertTrue(msg.contains("no column 'pixels'"), msg);
    }

    @Test
    void truncatedModelIsNamed() throws Exception {
        byte[] bytes = Files.readAllBytes(Path.of(RESNET));
        Path cut = tmp.resolve("cut.onnx");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length / 2));
        String msg = fail(JobFixtures.config(cut.toString(), CALIB, tmp.resolve("out7").toString()));
        Assertions.assertTrue(msg.contains("cut.onnx"), msg);
    }

    /**
     * The bundled model in float64 (its weights and its declared input and output): the images format names the
     * float64 weights rather than sending the user to Parquet, and with Parquet the first layer's weight is named.
     */
    @Test
    void float64ModelIsRefusedNamingItsWeights() throws Exception {
        onnx.Onnx.ModelProto.Builder b = onnx.Onnx.ModelProto.parseFrom(Files.readAllBytes(Path.of(RESNET))).toBuilder();
        onnx.Onnx.GraphProto.Builder g = b.getGraphBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            onnx.Onnx.TensorProto t = g.getInitializer(i);
            if (t.getDataType() != onnx.Onnx.TensorProto.DataType.FLOAT_VALUE) continue;
            float[] v = new float[t.getFloatDataCount()];
            for (int k = 0; k < v.length; k++) v[k] = t.getFloatData(k);
            if (!t.getRawData().isEmpty()) {
                java.nio.FloatBuffer fb = t.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                v = new float[fb.remaining()];
                fb.get(v);
            }
            java.nio.ByteBuffer raw = java.nio.ByteBuffer.allocate(8 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (float x : v) raw.putDouble(x);
            g.setInitializer(i, t.toBuilder().clearFloatData().setDataType(onnx.Onnx.TensorProto.DataType.DOUBLE_VALUE)
                    .setRawData(org.nd4j.shade.protobuf.ByteString.copyFrom(raw.array())));
        }
        for (onnx.Onnx.ValueInfoProto.Builder v : g.getInputBuilderList()) v.getTypeBuilder().getTensorTypeBuilder().setElemType(11);
        for (onnx.Onnx.ValueInfoProto.Builder v : g.getOutputBuilderList()) v.getTypeBuilder().getTensorTypeBuilder().setElemType(11);
        g.clearValueInfo();
        Path f64 = tmp.resolve("resnet_f64.onnx");
        Files.write(f64, b.build().toByteArray());

        String msg = fail(JobFixtures.config(f64.toString(), CALIB, tmp.resolve("out-f64").toString()));
        Assertions.assertTrue(msg.contains("is a float64 tensor, and so are its weights (")
                && msg.contains("export this one in float32"), msg);

        Path rows = tmp.resolve("f64.parquet");
        writeParquet(rows, List.of(new float[784], new float[784]));
        msg = fail(JobFixtures.config(f64.toString(), CALIB, tmp.resolve("out-f64p").toString(),
                "calibration.format=parquet", "calibration.path=" + rows, "pipeline=[fold-bn,calibrate,export]"));
        Assertions.assertTrue(msg.contains("weight stem.0.weight is DOUBLE, expected a FLOAT initializer")
                && msg.contains("export this one in float32"), msg);
    }

    @Test
    void existingOutputIsAnErrorAndStaysUntouchedUnlessOverwrite() throws Exception {
        Path dir = images("ow");
        Path existing = tmp.resolve("existing");
        QuantcalConfig cfg = JobFixtures.config(RESNET, dir.toString(), existing.toString(), "pipeline=[calibrate]");
        QuantcalJob.run(spark(), cfg, out); // a quantcal output, which only overwrite replaces
        Files.writeString(existing.resolve("keep.txt"), "mine");
        RuntimeException e = assertThrows(RuntimeException.class, () -> QuantcalJob.run(spark(), cfg, out));
        Assertions.assertTrue(e.getMessage().contains("already exists") && e.getMessage().contains("quantcal.output.overwrite"));
        assertEquals("mine", Files.readString(existing.resolve("keep.txt")));

        QuantcalJob.run(spark(), JobFixtures.config(RESNET, dir.toString(), existing.toString(), "pipeline=[calibrate]",
                "output.overwrite=true"), out);
        assertFalse(Files.exists(existing.resolve("keep.txt")));
        Assertions.assertTrue(Files.exists(existing.resolve("run.json")));
    }

    @Test
    void cliConfigErrorsExitOneWithTheKeyAndStartNoRun() throws Exception {
        Path conf = tmp.resolve("c.conf");
        Files.writeString(conf, JobFixtures.baseConfig(RESNET, CALIB, tmp.resolve("out8").toString()));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(new String[] {"run", conf.toString(), "quantization.wieghts.bits=4"}, out,
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(1, code);
        String e = err.toString(StandardCharsets.UTF_8);
        Assertions.assertTrue(e.startsWith("quantcal: error: unknown config key quantcal.quantization.wieghts.bits"), e);
        assertEquals(1, e.strip().lines().count(), "one-line reason");
        assertFalse(Files.exists(tmp.resolve("out8")));

        err.reset();
        assertEquals(1, Cli.run(new String[] {"run", tmp.resolve("missing.conf").toString()}, out,
                new PrintStream(err, true, StandardCharsets.UTF_8)));
        Assertions.assertTrue(err.toString(StandardCharsets.UTF_8).contains("missing.conf"));
        assertEquals(2, Cli.run(new String[] {"frobnicate"}, out, new PrintStream(err, true, StandardCharsets.UTF_8)));
    }
}
