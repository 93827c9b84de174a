package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * the same, row for row and bit for bit, as the local[*] run's. Runs after {@code package} (an integration test: the
 * cluster jar is built at pre-integration-test); everything started is stopped at the end, also when a test fails.
 */
class ClusterIT extends SparkJobTest {

    static final Path JOB = Path.of("").toAbsolutePath();
    /** quantcal's own dependencies, which executors must get from the cluster jar, not from the Spark home. */
    static final List<String> NOT_SPARK = List.of("/org/nd4j/", "/org/bytedeco/", "/com/microsoft/onnxruntime/",
            "/com/typesafe/config/", "/org/jfree/", "/io/quantcal/", "quantcal-kernels");

    final List<Process> started = new ArrayList<>();
    Path base;
    Path sparkHome;
    String master;

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
        waitFor("worker-1", "Successfully registered with master");
        waitFor("worker-2", "Successfully registered with master");
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
    void theClusterWritesTheLocalRunsScaleTable() throws Exception {
        String[][] pipelines = {
                {"calibrate", "pipeline=[fold-bn,calibrate,export]", "quantization.activations.calibrator=percentile"},
                // one wave each (parallel search, FP inputs): the distributed steps are the same, in a third of the time
                {"easyquant", "pipeline=[fold-bn,calibrate,easyquant,export]", "easyquant.samples=8", "easyquant.segments=6",
                        "easyquant.rounds=1", "easyquant.mode=parallel"},
                {"adaround", "pipeline=[fold-bn,calibrate,adaround,export]", "adaround.samples=4", "adaround.iterations=20",
                        "adaround.resume=false", "adaround.inputs=fp"}};
        for (String[] p : pipelines) {
            String name = p[0];
            List<String> overrides = new ArrayList<>(List.of("run-id=cluster-" + name, "calibration.limit=48",
                    "calibration.partitions=4"));
            overrides.addAll(Arrays.asList(p).subList(1, p.length));
            String local = base.resolve(name + "-local").toString();
            QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, local, overrides.toArray(new String[0])), out);

            String clustered = base.resolve(name + "-cluster").toString();
            Path conf = base.resolve(name + ".conf");
            Files.writeString(conf, JobFixtures.baseConfig(RESNET, CALIB, clustered));
            List<String> cmd = new ArrayList<>(List.of(JobFixtures.ROOT.resolve("deploy/quantcal-submit").toString(),
                    "--master", master, "--conf", "spark.executor.memory=1500m", "--conf", "spark.cores.max=2",
                    "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
                    "run", conf.toString()));
            cmd.addAll(overrides);
            Process submit = process("submit-" + name, cmd);
            if (!submit.waitFor(5, TimeUnit.MINUTES)) Assertions.fail("spark-submit of " + name + " did not end in 5 min");
            String log = Files.readString(base.resolve("submit-" + name + ".log"));
            assertEquals(0, submit.exitValue(), "spark-submit " + name + ":\n" + tail(log));
            Assertions.assertTrue(log.contains("quantcal run done in"), tail(log));

            List<Row> a = rows(local);
            List<Row> b = rows(clustered);
            Assertions.assertFalse(a.isEmpty());
            assertEquals(a, b, name + ": the cluster's scale table is the local[*] run's");
            Assertions.assertTrue(Files.isRegularFile(Path.of(clustered, "report.html")));
        }
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
        cmd.addAll(List.of("-Xmx512m", "-cp", sparkHome.resolve("jars") + "/*", mainClass));
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
