package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.pipeline.Progress;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A real Spark standalone cluster on loopback: a Master and two Workers, each its own JVM started from the Maven
 * artifacts (a Spark home whose jars/ are the build's Spark jars, none of quantcal's own dependencies), and the job
 * submitted through deploy/quantcal-submit, i.e. Spark's SparkSubmit with the shaded cluster jar. Its scale table is
 * the same, row for row and bit for bit, as the local[*] run's, for the easyquant (on percentile calibration), adaround
 * and learn (LSQ) pipelines. Runs after {@code package} (an integration test: the
 * cluster jar is built at pre-integration-test); everything started is stopped at the end, also when a test fails.
 */
@org.junit.jupiter.api.TestMethodOrder(org.junit.jupiter.api.MethodOrderer.OrderAnnotation.class)
class ClusterIT extends SparkJobTest {

    static final Path JOB = Path.of("").toAbsolutePath();
    /** quantcal's own dependencies, which executors must get from the cluster jar, not from the Spark home. */
    static final List<String> NOT_SPARK = List.of("/org/nd4j/", "/org/bytedeco/", "/com/microsoft/onnxruntime/",
            "/com/typesafe/config/", "/org/jfree/", "/io/quantcal/", "quantcal-kernels");

    /**
     * The pipelines run on the cluster and on local[*]: name, the methods the table has rows of, the pass step an
     * executor is killed in (null: none), the overrides besides the common ones.
     */
    record Pipeline(String name, List<String> methods, String killIn, List<String> overrides) {
        List<String> all() {
            List<String> o = new ArrayList<>(List.of("run-id=cluster-" + name, "calibration.limit=48", "calibration.partitions=4"));
            o.addAll(overrides);
            return o;
        }
    }

    static final List<Pipeline> PIPELINES = List.of(
            // one wave each (parallel search, FP inputs): the distributed steps are the same, in a third of the time.
            // Calibrated by percentile: the tensors no layer search reads (the ort profile's Add and pooling ones)
            // keep percentile rows, so this one run also covers the histogram calibrators' distributed merge.
            // 32 samples: with 8 a layer's grid task took 40-200 ms, often over before the executor killed under it died
            new Pipeline("easyquant", List.of("easyquant", "percentile"), "grid", List.of(
                    "pipeline=[fold-bn,calibrate,easyquant,export]", "quantization.activations.calibrator=percentile",
                    "easyquant.samples=32", "easyquant.segments=6", "easyquant.rounds=1", "easyquant.mode=parallel")),
            // 200 iterations: each layer's task lasts long enough for the executor killed under it to take it along
            new Pipeline("adaround", List.of("adaround"), "adaround wave", List.of("pipeline=[fold-bn,calibrate,adaround,export]", "adaround.samples=4",
                    "adaround.iterations=200", "adaround.resume=false", "adaround.inputs=fp")),
            // LSQ: one wave (FP inputs), few samples and iterations; its tasks are AdaRound's capture and a learner
            new Pipeline("learn", List.of("lsq"), null, List.of("pipeline=[fold-bn,calibrate,learn,export]", "learn.method=lsq",
                    "learn.samples=4", "learn.iterations=20", "learn.inputs=fp", "learn.resume=false")));

    /** The driver-kill test's run: AdaRound with quantized inputs, layer by layer in waves. */
    static final List<String> RESUME = List.of("run-id=cluster-resume", "calibration.limit=48", "calibration.partitions=4",
            "pipeline=[fold-bn,calibrate,adaround,export]", "adaround.samples=4", "adaround.iterations=20",
            "adaround.inputs=quantized");

    final List<Process> started = new ArrayList<>();
    Path base;
    Path sparkHome;
    String master;
    /**
     * The local[*] reference runs' outputs by name, each run once (the spark-shell test reads the first one). They
     * run in the test's thread, not beside the submitted runs: on 2 cores a reference run beside a cluster run slowed
     * that run by about as much as it saved (measured).
     */
    final Map<String, String> locals = new java.util.HashMap<>();
    boolean workersUp;

    @BeforeAll
    void startCluster() throws Exception {
        base = Files.createTempDirectory(JOB.resolve("target"), "cluster-it-");
        sparkHome = base.resolve("spark-home");
        Files.createDirectories(sparkHome.resolve("jars"));
        Files.createDirectories(sparkHome.resolve("conf"));
        String cp = Files.readString(JOB.resolve("target/spark-it-classpath.txt")).strip();
        for (String entry : cp.split(java.io.File.pathSeparator)) {
            Path jar = Path.of(entry);
            if (!entry.endsWith(".jar") || NOT_SPARK.stream().anyMatch(entry::contains)) continue;
            Path link = sparkHome.resolve("jars").resolve(jar.getFileName());
            if (!Files.exists(link)) Files.createSymbolicLink(link, jar);
        }
        Files.writeString(sparkHome.resolve("conf/log4j2.properties"), Files.readString(JOB.resolve("src/test/resources/log4j2-test.properties")));
        // spark-submit: Spark's SparkSubmit on the same jars, as bin/spark-submit runs it
        Path submit = base.resolve("spark-submit");
        Files.writeString(submit, "#!/usr/bin/env bash\nexec java " + String.join(" ", javaFlags())
                + " -cp \"$SPARK_HOME/jars/*\" org.apache.spark.deploy.SparkSubmit \"$@\"\n");
        submit.toFile().setExecutable(true);

        int port = freePort();
        master = "spark://127.0.0.1:" + port;
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", String.valueOf(port),
                "--webui-port", String.valueOf(freePort()));
        waitFor("master", "I have been elected leader");
        for (int w = 1; w <= 2; w++) {
            Path dir = Files.createDirectories(base.resolve("worker-" + w));
            start("worker-" + w, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                    "--memory", "3g", "--work-dir", dir.toString(), "--webui-port", String.valueOf(freePort()), master);
        }
        // the workers register while the first local[*] reference run goes (awaitWorkers, before the first submit)
    }

    /** The output of the local[*] run {@code name} with {@code overrides}, run on the first call. */
    String local(String name, List<String> overrides) {
        return locals.computeIfAbsent(name, n -> {
            String output = base.resolve(name + "-local").toString();
            QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output, overrides.toArray(new String[0])), out);
            return output;
        });
    }

    void awaitWorkers() throws Exception {
        if (workersUp) return;
        waitFor("worker-1", "Successfully registered with master");
        waitFor("worker-2", "Successfully registered with master");
        workersUp = true;
    }

    @AfterAll
    void stopCluster() throws IOException {
        // Workers first (each stops its executors), then the master; each by its pid, its descendants too
        for (int i = started.size() - 1; i >= 0; i--) stop(started.get(i));
        // each executor fetched its own copy of the 140 MB cluster jar into its work directory: those go, the logs stay
        if (base == null) return;
        try (Stream<Path> files = Files.walk(base)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".jar") && Files.isRegularFile(f,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS) && !f.startsWith(sparkHome)).toList()) {
                Files.delete(f);
            }
        }
    }

    @Test
    @org.junit.jupiter.api.Order(2)
    void theClusterWritesTheLocalRunsScaleTableAlsoWhenAnExecutorIsKilled() throws Exception {
        for (Pipeline p : PIPELINES) {
            String name = p.name();
            List<String> overrides = p.all();
            String local = local(name, overrides);
            // easyquant and adaround lose an executor in the middle of their pass: the run goes on, same table
            boolean kill = p.killIn() != null;
            String clustered = base.resolve(name + "-cluster").toString();
            int uiPort = freePort();
            Process submit = submit("submit-" + name, clustered, overrides, kill
                    ? List.of("--conf", "spark.ui.enabled=true", "--conf", "spark.ui.port=" + uiPort)
                    : List.of("--conf", "spark.ui.enabled=false"));
            ExecutorKiller killer = kill ? ExecutorKiller.start(uiPort, Progress.group("cluster-" + name, name),
                    p.killIn(), submit, base.resolve("submit-" + name + ".log")) : null;
            if (!submit.waitFor(5, TimeUnit.MINUTES)) Assertions.fail("spark-submit of " + name + " did not end in 5 min");
            String log = Files.readString(base.resolve("submit-" + name + ".log"));
            assertEquals(0, submit.exitValue(), "spark-submit " + name + ":\n" + tail(log));
            Assertions.assertTrue(log.contains("quantcal run done in"), tail(log));
            if (killer != null) {
                killer.join();
                System.out.println(name + ": killed " + killer.kills);
                // the driver lost the executor with a task of the pass running on it, and ran that task again
                Assertions.assertNotNull(killer.executorId, name + ": no task of the pass was lost with an executor (killed "
                        + killer.kills + ", " + killer.error + ")\n" + tail(log));
            }
            List<Row> a = rows(local);
            List<Row> b = rows(clustered);
            Assertions.assertFalse(a.isEmpty());
            for (String method : p.methods()) {
                Assertions.assertTrue(a.stream().anyMatch(r -> method.equals(r.getAs("method"))), name + ": no " + method + " rows");
            }
            assertEquals(a, b, name + ": the cluster's scale table is the local[*] run's");
            Assertions.assertTrue(Files.isRegularFile(Path.of(clustered, "report.html")));
        }
    }

    /**
     * The driver (SparkSubmit, client mode) killed while AdaRound runs with quantized inputs (layer by layer, in waves):
     * the rerun with {@code adaround.resume} takes the layers the killed run finished from the cache beside the output
     * (counted in run.json), solves the others, and writes the local[*] run's tables; the killed run left nothing at the
     * output path, and the rerun removed what it left beside it.
     */
    @Test
    @org.junit.jupiter.api.Order(1)
    void aRerunAfterTheDriverWasKilledMidAdaRoundResumes() throws Exception {
        List<String> overrides = RESUME;
        String local = local("resume", List.of(JobFixtures.concat(RESUME.toArray(new String[0]), "adaround.resume=false")));

        Path clustered = base.resolve("resume-cluster");
        Path cache = base.resolve("resume-cluster" + io.quantcal.job.io.PathOverlap.CACHE_SUFFIX);
        Process first = submit("submit-resume-1", clustered.toString(), overrides, List.of("--conf", "spark.ui.enabled=false"));
        // the first layer the cluster finished is in the cache: the driver dies while the next waves run
        long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
        while (cachedLayers(cache).isEmpty()) {
            if (!first.isAlive() || System.nanoTime() > end) {
                Assertions.fail("the first run ended before a layer was cached:\n" + tail(Files.readString(base.resolve("submit-resume-1.log"))));
            }
            Thread.sleep(50);
        }
        // the driver JVM: deploy/quantcal-submit and the spark-submit script exec it, so it has their pid
        ProcessHandle driver = Stream.concat(Stream.of(first.toHandle()), first.descendants())
                .filter(h -> h.info().commandLine().orElse("").contains("org.apache.spark.deploy.SparkSubmit"))
                .findFirst().orElseThrow(() -> new AssertionError("no SparkSubmit JVM: " + first.info()));
        driver.destroyForcibly();
        Assertions.assertTrue(first.waitFor(1, TimeUnit.MINUTES), "the killed driver did not exit");
        Assertions.assertNotEquals(0, first.exitValue());
        String log1 = Files.readString(base.resolve("submit-resume-1.log"));
        Assertions.assertFalse(log1.contains("quantcal run done in"), tail(log1));
        Assertions.assertFalse(Files.exists(clustered), "the killed run left something at the output path");
        int cached = cachedLayers(cache).size();
        Assertions.assertTrue(cached > 0 && cached < 7, cached + " of 7 layers cached when the driver was killed");

        Process second = submit("submit-resume-2", clustered.toString(), overrides, List.of("--conf", "spark.ui.enabled=false"));
        if (!second.waitFor(5, TimeUnit.MINUTES)) Assertions.fail("the rerun did not end in 5 min");
        String log2 = Files.readString(base.resolve("submit-resume-2.log"));
        assertEquals(0, second.exitValue(), "rerun:\n" + tail(log2));
        JsonNode ar = new ObjectMapper().readTree(clustered.resolve("run.json").toFile()).at("/passes/adaround");
        assertEquals(cached, ar.get("layers_resumed").asInt(), ar.toString());
        assertEquals(7 - cached, ar.get("layers_optimized").asInt(), ar.toString());

        assertEquals(rows(local), rows(clustered.toString()), "the resumed run's scale table is the local[*] run's");
        assertEquals(weights(local), weights(clustered.toString()), "the resumed run's integer weights are the local[*] run's");
        try (Stream<Path> beside = Files.list(base)) {
            List<String> left = beside.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(".resume-cluster.")).toList();
            assertEquals(List.of(), left, "temporary outputs or a lock of the killed run left beside the output");
        }
    }

    /**
     * The README's spark-shell recipe in spark-shell's real REPL: {@code org.apache.spark.repl.Main} under SparkSubmit, as
     * bin/spark-shell starts it, from the cluster's Spark home with {@code --jars} the cluster jar, fed the recipe on
     * stdin. The tables it prints are the scale table's numbers as read here, grouped here in plain Java.
     * It reads the table of the first pipeline's local[*] run, made once for the cluster test (run on demand when
     * this test runs alone).
     */
    @Test
    @org.junit.jupiter.api.Order(3)
    void theReadmesSparkShellRecipeRunsInTheRealRepl() throws Exception {
        // the table of the first pipeline's local[*] run (the cluster test's reference)
        Pipeline first = PIPELINES.get(0);
        String output = local(first.name(), first.all());
        String table = output + "/" + QuantcalJob.SCALE_TABLE;

        String readme = Files.readString(JobFixtures.ROOT.resolve("README.md"));
        int at = readme.indexOf("```scala", readme.indexOf("In spark-shell"));
        String recipe = readme.substring(readme.indexOf('\n', at) + 1, readme.indexOf("```", at + 8));
        Assertions.assertTrue(recipe.contains("\"out/example/scale_table\""), recipe);
        Path script = base.resolve("recipe.scala");
        Files.writeString(script, recipe.replace("\"out/example/scale_table\"", "\"" + table + "\""));

        Path shell = base.resolve("spark-shell");
        // bin/spark-shell: SparkSubmit with the REPL's main class and -Dscala.usejavacp=true (the REPL compiles
        // against the JVM's class path); "spark-shell" is the primary resource SparkSubmit expects for a shell
        Files.writeString(shell, "#!/usr/bin/env bash\nexec java " + String.join(" ", javaFlags())
                + " -Dscala.usejavacp=true -cp \"$SPARK_HOME/jars/*\" org.apache.spark.deploy.SparkSubmit"
                + " --class org.apache.spark.repl.Main --name 'Spark shell' \"$@\" spark-shell\n");
        shell.toFile().setExecutable(true);
        Path clusterJar;
        try (Stream<Path> jars = Files.list(JobFixtures.ROOT.resolve("job/target"))) {
            clusterJar = jars.filter(f -> f.getFileName().toString().endsWith("-cluster.jar")).findFirst().orElseThrow();
        }
        ProcessBuilder pb = new ProcessBuilder(shell.toString(), "--master", "local[1]", "--jars", clusterJar.toString(),
                "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false")
                .redirectInput(script.toFile())
                .redirectOutput(base.resolve("spark-shell.out").toFile())
                .redirectError(base.resolve("spark-shell.log").toFile());
        pb.environment().put("SPARK_HOME", sparkHome.toString());
        pb.environment().put("SPARK_CONF_DIR", sparkHome.resolve("conf").toString());
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        Process repl = pb.start();
        started.add(repl);
        if (!repl.waitFor(5, TimeUnit.MINUTES)) Assertions.fail("spark-shell did not end in 5 min");
        String printed = Files.readString(base.resolve("spark-shell.out"));
        String why = printed + "\n" + tail(Files.readString(base.resolve("spark-shell.log")));
        assertEquals(0, repl.exitValue(), why);
        Assertions.assertFalse(printed.contains("error:"), why);
        Assertions.assertTrue(printed.contains("Using Scala version 2.12"), why);
        List<List<List<String>>> shown = shownTables(printed);
        assertEquals(2, shown.size(), why);

        List<Row> all = spark().read().parquet(table).collectAsList();
        // query 1: every activation row, its parameters as the table has them
        assertEquals(List.of("node", "tensor", "scale", "zero_point", "range_min", "range_max"), shown.get(0).get(0));
        List<String> want = new ArrayList<>();
        for (Row r : all) {
            if (!r.<String>getAs("role").equals("activation")) continue;
            want.add(List.<Object>of(r.<String>getAs("node"), r.<String>getAs("tensor"), r.<Double>getAs("scale"), r.<Integer>getAs("zero_point"),
                    r.<Double>getAs("range_min"), r.<Double>getAs("range_max")).toString());
        }
        List<String> got = new ArrayList<>();
        for (List<String> c : shown.get(0).subList(1, shown.get(0).size())) {
            got.add(List.<Object>of(c.get(0), c.get(1), Double.parseDouble(c.get(2)), Integer.parseInt(c.get(3)),
                    Double.parseDouble(c.get(4)), Double.parseDouble(c.get(5))).toString());
        }
        Assertions.assertTrue(want.size() > 5, "activation rows: " + want.size());
        want.sort(null);
        got.sort(null);
        assertEquals(want, got, "spark-shell's activation rows");

        // query 2: min and max scale and the row count per node and role, in the recipe's order (node, role)
        assertEquals(List.of("node", "role", "min(scale)", "max(scale)", "count(1)"), shown.get(1).get(0));
        java.util.TreeMap<String, double[]> groups = new java.util.TreeMap<>();
        for (Row r : all) {
            double scale = r.getAs("scale");
            double[] g = groups.computeIfAbsent(r.getAs("node") + "\u0000" + r.getAs("role"),
                    k -> new double[] {Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0});
            g[0] = Math.min(g[0], scale);
            g[1] = Math.max(g[1], scale);
            g[2]++;
        }
        List<String> wantGroups = new ArrayList<>();
        groups.forEach((k, g) -> wantGroups.add(List.<Object>of(k.replace("\u0000", " "), g[0], g[1], (long) g[2]).toString()));
        List<String> gotGroups = new ArrayList<>();
        for (List<String> c : shown.get(1).subList(1, shown.get(1).size())) {
            gotGroups.add(List.<Object>of(c.get(0) + " " + c.get(1), Double.parseDouble(c.get(2)), Double.parseDouble(c.get(3)),
                    Long.parseLong(c.get(4))).toString());
        }
        assertEquals(wantGroups, gotGroups, "spark-shell's groups");
    }

    /** The tables Dataset.show printed, in order: each its rows of trimmed cells, the header first. */
    static List<List<List<String>>> shownTables(String printed) {
        List<List<List<String>>> tables = new ArrayList<>();
        List<List<String>> current = null;
        for (String line : printed.lines().toList()) {
            if (line.startsWith("+-") || line.startsWith("|")) {
                if (current == null) tables.add(current = new ArrayList<>());
                if (line.startsWith("|")) {
                    current.add(Arrays.stream(line.substring(1, line.length() - 1).split("\\|", -1)).map(String::strip).toList());
                }
            } else {
                current = null;
            }
        }
        return tables;
    }

    /** The layer results in an AdaRound cache (one directory per key; a result is {@code <layer>.layer.json}, renamed in whole). */
    static List<Path> cachedLayers(Path cache) throws IOException {
        if (!Files.isDirectory(cache)) return List.of();
        try (Stream<Path> files = Files.walk(cache)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".layer.json")).toList();
        }
    }

    /** deploy/quantcal-submit against the cluster: client mode, an executor on each worker. */
    Process submit(String name, String output, List<String> overrides, List<String> sparkConf) throws Exception {
        awaitWorkers();
        Path conf = base.resolve(name + ".conf");
        Files.writeString(conf, JobFixtures.baseConfig(RESNET, CALIB, output));
        List<String> cmd = new ArrayList<>(List.of(JobFixtures.ROOT.resolve("deploy/quantcal-submit").toString(),
                "--master", master, "--conf", "spark.executor.memory=1500m", "--conf", "spark.cores.max=2",
                "--conf", "spark.driver.host=127.0.0.1",
                // a task lost with its executor counts as one failure of that task: Spark's default of 4 attempts
                // lets it run again on the other executor or on the one the worker starts in its place
                "--conf", "spark.task.maxFailures=4"));
        cmd.addAll(sparkConf);
        cmd.addAll(List.of("run", conf.toString()));
        cmd.addAll(overrides);
        return process(name, cmd);
    }

    /**
     * Watches a run's driver through Spark's REST API (the driver UI's /api/v1) and kills an executor JVM by its pid,
     * with SIGKILL, as soon as a job of the given job group whose description contains {@code step} runs and that
     * executor has a task in flight. The pass's tasks are short (0.1-0.5 s on the example), so the task the REST API
     * shows may have ended by the time the JVM dies: then the driver log shows the executor lost but no task lost with
     * it, and the killer tries again while the pass runs (at most 6 executors in all; the master gives up an
     * application after 10 executor failures in a row).
     */
    static final class ExecutorKiller extends Thread {
        final int uiPort;
        final String group;
        final String step;
        final Process submit;
        final Path driverLog;
        final List<String> kills = new java.util.concurrent.CopyOnWriteArrayList<>();
        /** The executor whose loss took a running task of the pass with it; null if none did. */
        volatile String executorId;
        volatile String error = "the run ended first";

        private ExecutorKiller(int uiPort, String group, String step, Process submit, Path driverLog) {
            super("executor-killer");
            setDaemon(true);
            this.uiPort = uiPort;
            this.group = group;
            this.step = step;
            this.submit = submit;
            this.driverLog = driverLog;
        }

        static ExecutorKiller start(int uiPort, String group, String step, Process submit, Path driverLog) {
            ExecutorKiller k = new ExecutorKiller(uiPort, group, step, submit, driverLog);
            k.start();
            return k;
        }

        @Override
        public void run() {
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
            ObjectMapper json = new ObjectMapper();
            String app = null;
            long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
            while (submit.isAlive() && System.nanoTime() < end && kills.size() < 6) {
                try {
                    if (app == null) {
                        JsonNode apps = get(http, json, "/api/v1/applications");
                        if (apps != null && apps.size() > 0) app = apps.get(0).get("id").asText();
                        else Thread.sleep(100);
                        continue;
                    }
                    String description = null;
                    JsonNode jobs = get(http, json, "/api/v1/applications/" + app + "/jobs?status=running");
                    for (JsonNode j : jobs == null ? json.createArrayNode() : jobs) {
                        if (group.equals(j.path("jobGroup").asText()) && j.path("description").asText().contains(step)
                                && j.path("numActiveTasks").asInt() > 0) {
                            description = j.path("description").asText();
                        }
                    }
                    if (description == null) {
                        Thread.sleep(20);
                        continue;
                    }
                    JsonNode executors = get(http, json, "/api/v1/applications/" + app + "/executors");
                    for (JsonNode e : executors == null ? json.createArrayNode() : executors) {
                        String id = e.get("id").asText();
                        if (e.path("activeTasks").asInt() == 0) continue;
                        ProcessHandle h = executorJvm(app, id);
                        if (h == null) continue;
                        h.destroyForcibly();
                        kills.add("executor " + id + " (pid " + h.pid() + ") of " + app + " during '" + description + "'");
                        // the driver logs the loss, and with it each task that was running there
                        long seen = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                        while (!Files.readString(driverLog).contains("Lost executor " + id + " ") && System.nanoTime() < seen) {
                            Thread.sleep(100);
                        }
                        Thread.sleep(500);
                        if (Files.readString(driverLog).contains("ExecutorLostFailure (executor " + id + " exited")) {
                            executorId = id;
                            return;
                        }
                        break;
                    }
                } catch (Exception e) {
                    error = e.toString();
                }
            }
        }

        /** The JVM of executor {@code id} of application {@code app}, by its command line. */
        static ProcessHandle executorJvm(String app, String id) {
            for (ProcessHandle h : ProcessHandle.allProcesses().toList()) {
                String cmd = h.info().commandLine().orElse("");
                if (cmd.contains("CoarseGrainedExecutorBackend") && cmd.contains(" --app-id " + app + " ")
                        && cmd.contains(" --executor-id " + id + " ")) {
                    return h;
                }
            }
            return null;
        }

        JsonNode get(HttpClient http, ObjectMapper json, String path) throws IOException, InterruptedException {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + uiPort + path))
                        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                return r.statusCode() == 200 ? json.readTree(r.body()) : null;
            } catch (java.net.ConnectException e) {
                return null; // the driver's UI is not up yet
            }
        }
    }

    /** The adaround_weights table, by tensor. */
    List<Row> weights(String output) {
        return spark().read().parquet(output + "/" + io.quantcal.job.pipeline.AdaRoundPass.WEIGHTS_TABLE).orderBy("tensor").collectAsList();
    }

    /** The table's rows in a fixed order (the table's own order is that of the nodes; both runs write it the same). */
    List<Row> rows(String output) {
        Dataset<Row> t = spark().read().parquet(output + "/" + QuantcalJob.SCALE_TABLE);
        return t.orderBy("node", "role", "tensor", "channel").collectAsList();
    }

    static List<String> javaFlags() {
        // set by the build (job/pom.xml); empty outside it
        return Arrays.stream(System.getProperty("quantcal.spark.jvm.flags", "").trim().split("\\s+"))
                .filter(f -> !f.isBlank()).toList();
    }

    void start(String name, String mainClass, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("java"));
        cmd.addAll(javaFlags());
        // the daemons only pass messages: no C2 compiler or parallel GC threads taking the 2 cores from the runs
        cmd.addAll(List.of("-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", sparkHome.resolve("jars") + "/*", mainClass));
        cmd.addAll(List.of(args));
        process(name, cmd);
    }

    Process process(String name, List<String> cmd) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(base.resolve(name + ".log").toFile());
        Map<String, String> env = pb.environment();
        env.put("SPARK_HOME", sparkHome.toString());
        env.put("SPARK_SCALA_VERSION", "2.12");
        env.put("SPARK_LOCAL_IP", "127.0.0.1");
        env.put("SPARK_SUBMIT", base.resolve("spark-submit").toString());
        env.put("SPARK_CONF_DIR", sparkHome.resolve("conf").toString());
        Process p = pb.start();
        started.add(p);
        return p;
    }

    void waitFor(String name, String line) throws Exception {
        Path log = base.resolve(name + ".log");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(180); // a loaded 2-core machine starts JVMs slowly
        while (System.nanoTime() < end) {
            if (Files.exists(log) && Files.readString(log).contains(line)) return;
            Thread.sleep(250);
        }
        Assertions.fail(name + " did not log '" + line + "' in 180 s:\n" + tail(Files.exists(log) ? Files.readString(log) : ""));
    }

    static void stop(Process p) {
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        all.add(p.toHandle());
        for (ProcessHandle h : all) h.destroy();
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                h.destroyForcibly();
            }
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static String tail(String log) {
        List<String> l = log.lines().toList();
        return String.join("\n", l.subList(Math.max(0, l.size() - 60), l.size()));
    }
}
