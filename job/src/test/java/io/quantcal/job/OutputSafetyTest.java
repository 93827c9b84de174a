package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;


import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole job through the command line, with output paths a careless user gives and overwrite = true: an output
 * that overlaps an input is refused before any work, naming both, and every input is left as it was; concurrent runs
 * to one output give one winner and a whole output.
 */
class OutputSafetyTest extends SparkJobTest {

    @TempDir
    Path tmp;

    Path work;
    Path model;
    Path external;
    Path data;
    Path config;

    @BeforeEach
    void workspace() throws IOException {
        work = Files.createDirectories(tmp.resolve("work"));
        model = Files.copy(Path.of(RESNET), work.resolve("model.onnx"));
        data = work.resolve("calib");
        for (String cls : List.of("0-tshirt", "1-trouser")) {
            Files.createDirectories(data.resolve(cls));
            try (Stream<Path> s = Files.list(Path.of(CALIB, cls)).sorted().limit(5)) {
                for (Path p : s.toList()) Files.copy(p, data.resolve(cls).resolve(p.getFileName()));
            }
        }
        Path fixtures = JobFixtures.ROOT.resolve("kernels/src/test/resources/fixtures");
        Files.copy(fixtures.resolve("resnet_small_external.onnx"), work.resolve("external.onnx"));
        external = Files.copy(fixtures.resolve("resnet_small_external.onnx.data"), work.resolve("resnet_small_external.onnx.data"));
        config = work.resolve("run.conf");
        Files.writeString(config, """
                quantcal {
                  run-id = "fixed"
                  model = "%s"
                  calibration { path = "%s", limit = 10, batch-size = 5 }
                  pipeline = [calibrate, export]
                  output.path = "%s"
                }
                """.formatted(model, data, tmp.resolve("out")));
    }

    /** Every file under the workspace with its bytes' hash: what "left as it was" means. */
    Map<String, Integer> snapshot() throws IOException {
        Map<String, Integer> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(tmp)) {
            for (Path p : s.toList()) {
                m.put(tmp.relativize(p).toString(), Files.isRegularFile(p) ? java.util.Arrays.hashCode(Files.readAllBytes(p)) : -1);
            }
        }
        return m;
    }

    record Exit(int code, String err) {}

    Exit cli(String... overrides) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        List<String> args = new ArrayList<>(List.of("run", config.toString()));
        args.addAll(List.of(overrides));
        int code = Cli.run(args.toArray(new String[0]), out, new PrintStream(e, true, StandardCharsets.UTF_8));
        return new Exit(code, e.toString(StandardCharsets.UTF_8));
    }

    void refused(String output, String... expected) throws IOException {
        refused(new String[0], output, expected);
    }

    void refused(String[] extra, String output, String... expected) throws IOException {
        Map<String, Integer> before = snapshot();
        List<String> args = new ArrayList<>(List.of(extra));
        args.add("output.path=" + output);
        args.add("output.overwrite=true");
        Exit x = cli(args.toArray(new String[0]));
        assertEquals(1, x.code(), output + ": " + x.err());
        for (String s : expected) Assertions.assertTrue(x.err().contains(s), "expected '" + s + "' in: " + x.err());
        assertEquals(before, snapshot(), output + ": every input left as it was, nothing written");
    }

    @Test
    void anOutputOverlappingAnInputIsRefusedBeforeAnyWork() throws IOException {
        refused(data.toString(), "quantcal.output.path " + data, "is the calibration data (quantcal.calibration.path) " + data);
        refused(data.resolve("0-tshirt").toString(), "lies inside the calibration data");
        refused(model.toString(), "is the model (quantcal.model) " + model);
        refused(work.toString(), "contains the model (quantcal.model) " + model);
        refused(config.toString(), "is the config file " + config);
        refused(data.resolve("0-tshirt") + "/../..", "contains the model");
        Path link = Files.createSymbolicLink(tmp.resolve("images-link"), data);
        refused(link.toString(), "is the calibration data");
        refused(new String[] {"model=" + work.resolve("external.onnx")}, external.toString(),
                "is the model's external data file " + "file:" + external);
        refused(new String[] {"pipeline=[calibrate, adaround]"}, data + ".adaround-cache/x", "lies inside the resume cache");
        // the AdaRound cache beside the output would land on the data: <out>.adaround-cache
        Path cacheLike = Files.createDirectories(work.resolve("x.adaround-cache"));
        Files.writeString(cacheLike.resolve("keep.txt"), "keep");
        refused(new String[] {"pipeline=[calibrate, adaround]", "calibration.path=" + cacheLike},
                work.resolve("x").toString(), "the AdaRound resume cache beside quantcal.output.path, " + "file:" + cacheLike, "is the calibration data");
    }

    @Test
    void overwriteRefusesWhatIsNotAQuantcalOutput() throws IOException {
        Path file = Files.writeString(tmp.resolve("notes.txt"), "mine");
        refused(file.toString(), "is a regular file (4 bytes), not a quantcal output");
        Path dir = Files.createDirectories(tmp.resolve("mine"));
        Files.writeString(dir.resolve("a.txt"), "a");
        refused(dir.toString(), "is a directory that is not a quantcal output (no valid run.json): it holds 1 entries (a.txt)");
        // the working directory (the job module here) is not a quantcal output either
        refused(".", "is a directory that is not a quantcal output");
    }

    @Test
    void concurrentRunsToOneOutputGiveOneWinnerAndAWholeOutput() throws Exception {
        Path output = tmp.resolve("out");
        assertEquals(0, cli().code(), "a first output to replace");
        int n = 3;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Exit>> runs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            runs.add(pool.submit(() -> {
                go.await();
                return cli("output.overwrite=true");
            }));
        }
        go.countDown();
        int won = 0;
        for (Future<Exit> f : runs) {
            Exit x = f.get();
            if (x.code() == 0) {
                won++;
            } else {
                assertEquals(1, x.code(), x.err());
                Assertions.assertTrue(x.err().contains("output is being written by another run fixed (pid"), x.err());
            }
        }
        pool.shutdown();
        assertEquals(1, won, "exactly one of the concurrent runs wins");
        Map<?, ?> run = new ObjectMapper().readValue(output.resolve("run.json").toFile(), Map.class);
        assertEquals("fixed", run.get("run_id"));
        assertEquals(((Number) run.get("scale_table_rows")).longValue(),
                spark().read().parquet(output.resolve("scale_table").toString()).count());
        Assertions.assertTrue(Files.exists(output.resolve("model_qdq.onnx")));
        try (Stream<Path> s = Files.list(tmp)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(List.of("out", "work"), names, "no lock, temporary or old directory left");
        }
    }

    /** The external-data model of the workspace with every location replaced by {@code location}. */
    Path externalModel(String name, String location) throws IOException {
        onnx.Onnx.ModelProto.Builder m = onnx.Onnx.ModelProto.parseFrom(Files.readAllBytes(work.resolve("external.onnx"))).toBuilder();
        for (onnx.Onnx.TensorProto.Builder t : m.getGraphBuilder().getInitializerBuilderList()) {
            for (onnx.Onnx.StringStringEntryProto.Builder e : t.getExternalDataBuilderList()) {
                if (e.getKey().equals("location")) e.setValue(location);
            }
        }
        return Files.write(work.resolve(name), m.build().toByteArray());
    }

    @Test
    void externalDataOutsideTheModelDirectoryIsRefusedNamingInitializerAndLocation() throws IOException {
        Path secret = Files.copy(external, tmp.resolve("secret.bin"));
        Files.createSymbolicLink(work.resolve("link.bin"), secret);
        String[][] cases = {{"../secret.bin", "leaves the model directory"}, {secret.toString(), "is absolute"},
                {"link.bin", "through a symbolic link"}};
        for (String[] c : cases) {
            Path m = externalModel("hostile.onnx", c[0]);
            Exit x = cli("model=" + m, "output.path=" + tmp.resolve("out-hostile"));
            assertEquals(1, x.code(), x.err());
            Assertions.assertTrue(x.err().contains("hostile.onnx: initializer "), x.err());
            Assertions.assertTrue(x.err().contains("cannot read external data file " + c[0]), x.err());
            Assertions.assertTrue(x.err().contains(c[1]), x.err());
            Assertions.assertFalse(Files.exists(tmp.resolve("out-hostile")));
        }
        // the same data inside the directory, under a normalized name, is read
        Path ok = externalModel("fine.onnx", "./sub/../resnet_small_external.onnx.data");
        assertEquals(0, cli("model=" + ok, "output.path=" + tmp.resolve("out-fine")).code());
    }

    @Test
    void credentialsNeverReachRunJsonAndRelativePathsAreResolvedOnTheDriver() throws IOException {
        Exit x = cli("spark.conf.\"spark.hadoop.fs.s3a.secret.key\"=AKIA-very-secret",
                "spark.conf.\"spark.hadoop.fs.s3a.access.key\"=AKIA-access-id",
                "spark.conf.\"spark.myapp.password\"=hunter2", "spark.conf.\"spark.executor.memory\"=2g",
                "spark.conf.\"spark.eventLog.dir\"=s3a://user:pa55word@bucket/x");
        assertEquals(0, x.code(), x.err());
        String json = Files.readString(tmp.resolve("out/run.json"));
        for (String secret : List.of("AKIA-very-secret", "AKIA-access-id", "hunter2", "pa55word")) {
            Assertions.assertFalse(json.contains(secret), secret + " leaked into run.json");
        }
        Assertions.assertTrue(json.contains("*********(redacted)"), json);
        Assertions.assertTrue(json.contains("\"spark.executor.memory\" : \"2g\""), "other settings are kept: " + json);
        // a relative model path ends up as an absolute URI in run.json
        Map<?, ?> run = new ObjectMapper().readValue(json, Map.class);
        Assertions.assertTrue(run.get("model").toString().startsWith("file:/"), run.get("model").toString());
        Assertions.assertTrue(run.get("output").toString().startsWith("file:/"), run.get("output").toString());
    }
}
