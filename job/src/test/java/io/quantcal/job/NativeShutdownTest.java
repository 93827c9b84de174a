package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run that fails on a bad image exits 1 with its one-line reason, never by a signal. The job fails while the
 * other partition's task is still inside ONNX Runtime; before every session was closed ahead of System.exit,
 * ONNX Runtime's own JVM shutdown hook released its native environment under that task and the JVM died by
 * SIGSEGV in libonnxruntime (exit 134, an hs_err_pid*.log in the working directory): 3 of these 12 runs on the
 * 2-core build machine, more under load. Each run is a fresh JVM started as deploy/quantcal starts one, with its
 * own temporary working directory; a failed run's stderr and crash log are kept under target/NativeShutdownTest.
 */
class NativeShutdownTest {

    /** Enough runs that the old crash (about 1 run in 4 to 6) shows up with 90-97% probability; about 5 s each, two at a time. */
    static final int RUNS = 12;

    /** What spark-submit adds on Java 17 (NOTES-build.md, the parent pom's spark.jvm.flags). */
    static final List<String> SPARK_JAVA17_FLAGS = List.of("-XX:+IgnoreUnrecognizedVMOptions",
            "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED", "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
            "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED", "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED", "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
            "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
            "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED", "-Djdk.reflect.useDirectMethodHandle=false");

    @TempDir
    Path tmp;

    record Exit(int code, boolean hsErr, String reason) {}

    @Test
    void aBadImageRunExitsOneEveryTimeWithoutANativeCrash() throws Exception {
        // 20 images per class, the broken one last in the listing: it ends partition 1, so that task fails once it
        // has decoded its half, just as partition 0's task starts running its half through ONNX Runtime.
        Path images = tmp.resolve("images");
        Path lastClass = null;
        byte[] png = null;
        try (Stream<Path> classes = Files.list(Path.of(CALIB))) {
            for (Path cls : classes.sorted().toList()) {
                lastClass = Files.createDirectories(images.resolve(cls.getFileName().toString()));
                try (Stream<Path> s = Files.list(cls)) {
                    for (Path p : s.sorted().limit(20).toList()) {
                        Files.copy(p, lastClass.resolve(p.getFileName()));
                        if (png == null) png = Files.readAllBytes(p);
                    }
                }
            }
        }
        Files.write(lastClass.resolve("zzzzz.png"), Arrays.copyOf(png, 100)); // truncated inside its first chunk

        // An argument file keeps the command line short, as deploy/quantcal does.
        Path args = tmp.resolve("java.args");
        Files.writeString(args, "-cp\n\"" + System.getProperty("java.class.path").replace("\\", "\\\\") + "\"\n");

        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(SPARK_JAVA17_FLAGS);
        // a short-lived JVM: C1 only and the serial collector start faster on two cores
        cmd.addAll(List.of("-Xmx1g", "-Xss8m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"));
        String javacpp = System.getProperty("org.bytedeco.javacpp.cachedir");
        if (javacpp != null) cmd.add("-Dorg.bytedeco.javacpp.cachedir=" + javacpp);
        cmd.addAll(List.of("@" + args, "io.quantcal.job.Cli", "run"));

        // two runs at a time, each with its own configuration and output path: half the wall time, and the load of the
        // other run makes the old crash, if it came back, more likely rather than less
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        List<java.util.concurrent.Future<Exit>> futures = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) {
            int run = i;
            futures.add(pool.submit(() -> run(cmd, images, run)));
        }
        List<Exit> exits = new ArrayList<>();
        try {
            for (var f : futures) exits.add(f.get());
        } finally {
            pool.shutdownNow();
        }

        List<Integer> codes = exits.stream().map(Exit::code).toList();
        List<Boolean> hsErrs = exits.stream().map(Exit::hsErr).toList();
        assertEquals(java.util.Collections.nCopies(RUNS, 1), codes,
                "exit codes of " + RUNS + " runs (134 or 139: the JVM died by a signal in native code); hs_err_pid*.log "
                        + "left in the working directory: " + hsErrs);
        assertEquals(java.util.Collections.nCopies(RUNS, false), hsErrs, "hs_err_pid*.log left in the working directory");
        for (Exit e : exits) {
            assertTrue(e.reason().contains("zzzzz.png") && e.reason().contains("cannot be decoded"), e.reason());
        }
        for (int i = 0; i < RUNS; i++) {
            assertTrue(Files.notExists(tmp.resolve("run-" + i).resolve("out")), "a failed run leaves no output");
        }
    }

    /** Run {@code i} in its own working directory, with its own configuration (its output under that directory). */
    private Exit run(List<String> base, Path images, int i) throws Exception {
        Path wd = Files.createDirectories(tmp.resolve("run-" + i));
        Path conf = wd.resolve("bad-image.conf");
        Files.writeString(conf, """
                quantcal {
                  model = "%s"
                  pipeline = [calibrate]
                  calibration { path = "%s", limit = 1000, batch-size = 8, partitions = 2 }
                  spark.master = "local[2]"
                  output.path = "%s"
                }
                """.formatted(RESNET, images, wd.resolve("out")));
        List<String> cmd = new ArrayList<>(base);
        cmd.add(conf.toString());
        Process p = new ProcessBuilder(cmd).directory(wd.toFile())
                .redirectOutput(wd.resolve("stdout.txt").toFile()).redirectError(wd.resolve("stderr.txt").toFile())
                .start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError("run " + i + " did not end within 120 s; stderr in " + wd);
        }
        String err = Files.readString(wd.resolve("stderr.txt"), StandardCharsets.UTF_8);
        String reason = err.lines().filter(l -> l.startsWith("quantcal: error: ")).findFirst().orElse("(no reason line)");
        Exit exit = new Exit(p.exitValue(), hsErr(wd), reason);
        if (exit.code() != 1 || exit.hsErr()) keep(wd, i);
        return exit;
    }

    /** A failed run's stderr and crash log, kept under target/ for a look after the build. */
    private static void keep(Path wd, int run) throws IOException {
        Path dest = Files.createDirectories(Path.of("target", "NativeShutdownTest", "run-" + run));
        try (Stream<Path> s = Files.list(wd)) {
            for (Path f : s.toList()) {
                Files.copy(f, dest.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    private static boolean hsErr(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(f -> f.getFileName().toString().startsWith("hs_err_pid"));
        }
    }
}
