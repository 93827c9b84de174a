package io.quantcal.job;


import io.quantcal.job.pipeline.Pass;
import io.quantcal.job.pipeline.PipelineState;
import io.quantcal.job.pipeline.RunContext;
import io.quantcal.job.pipeline.TaskMemory;
import io.quantcal.kernels.runtime.MemoryException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

/**
 * Running out of memory is a one-line error with exit code 1 naming the pass and what to lower: on the driver, in a
 * Spark task (which would otherwise make the executor, in local mode the whole JVM, exit with code 52), and when one
 * sample does not fit the memory budget.
 */
class MemoryErrorsTest extends SparkJobTest {

    private static final String ADVICE = "lower quantcal.runtime.memory-budget or quantcal.calibration.batch-size";

    private static Pass throwing(String name, Throwable t) {
        return new Pass() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public PipelineState run(RunContext ctx, PipelineState state) {
                if (t instanceof Error e) throw e;
                throw QuantcalJobSneaky.<RuntimeException>sneaky(t);
            }
        };
    }

    /** Throws a checked exception (SparkException) as Spark's Java API does, undeclared. */
    static final class QuantcalJobSneaky {
        @SuppressWarnings("unchecked")
        static <E extends Throwable> RuntimeException sneaky(Throwable t) throws E {
            throw (E) t;
        }
    }

    private static String failure(Throwable e, int[] code) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        code[0] = Cli.fail(new PrintStream(b, true, StandardCharsets.UTF_8), e);
        return b.toString(StandardCharsets.UTF_8).strip();
    }

    @Test
    void aPassThatThrowsOutOfMemoryErrorExitsWithOneNamingThePassAndWhatToLower() {
        MemoryException e = Assertions.assertThrows(MemoryException.class,
                () -> QuantcalJob.runPass(throwing("evaluate", new OutOfMemoryError("Java heap space")), null, null));
        int[] code = new int[1];
        String line = failure(e, code);
        Assertions.assertEquals(1, code[0]);
        Assertions.assertTrue(line.startsWith("quantcal: error: evaluate ran out of memory (Java heap space) while on the driver; "
                + ADVICE), line);
        Assertions.assertEquals(1, line.lines().count(), line);
    }

    @Test
    void aBudgetErrorGetsThePassItHappenedIn() {
        MemoryException e = Assertions.assertThrows(MemoryException.class, () -> QuantcalJob.runPass(throwing("calibrate",
                new MemoryException("det.onnx, 120 captured tensors: one sample's ... take 400.0 MiB", null)), null, null));
        int[] code = new int[1];
        Assertions.assertEquals("quantcal: error: calibrate: det.onnx, 120 captured tensors: one sample's ... take 400.0 MiB",
                failure(e, code));
        Assertions.assertEquals(1, code[0]);
    }

    @Test
    void anOutOfMemoryErrorInASparkTaskFailsTheJobNotTheJvm() {
        JavaSparkContext jsc = jsc();
        Exception e = Assertions.assertThrows(Exception.class, () -> jsc.parallelize(List.of(1, 2, 3, 4), 2)
                .mapPartitions(it -> TaskMemory.guard("calibrate", "capturing 50 activation tensors of resnet50.onnx",
                        () -> {
                            if (it.hasNext() && it.next() == 3) throw new OutOfMemoryError("Java heap space");
                            return List.of(1).iterator();
                        }))
                .collect());
        // we are still here: the task's error did not reach Spark's fatal-error handler (System.exit(52))
        MemoryException m = Assertions.assertThrows(MemoryException.class, () -> QuantcalJob.runPass(throwing("calibrate", e), null, null));
        int[] code = new int[1];
        String line = failure(m, code);
        Assertions.assertEquals(1, code[0]);
        Assertions.assertTrue(line.startsWith("quantcal: error: calibrate ran out of memory (Java heap space) while capturing 50"
                + " activation tensors of resnet50.onnx; " + ADVICE), line);
        // the session still works
        Assertions.assertEquals(4, jsc.parallelize(List.of(1, 2, 3, 4), 2).count());
    }

    /**
     * An OutOfMemoryError no pass catches (inside Spark's own code of a task) in the session a run makes: the task
     * fails, not the JVM (Spark's fatal-error handler would exit with 52), and the command line says so with exit 1.
     * In a child JVM, since the handler's exit would end this one.
     */
    @Test
    void anUnguardedOutOfMemoryErrorInATaskOfARunsSessionExitsOneNot52(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws Exception {
        java.nio.file.Path args = tmp.resolve("java.args");
        java.nio.file.Files.writeString(args, "-cp\n\"" + System.getProperty("java.class.path").replace("\\", "\\\\") + "\"\n");
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(NativeShutdownTest.SPARK_JAVA17_FLAGS);
        cmd.addAll(List.of("-Xmx1g", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "@" + args,
                OutOfMemoryInTaskMain.class.getName(), tmp.resolve("out").toString()));
        java.nio.file.Path err = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(tmp.resolve("stdout.txt").toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            Assertions.fail("the child JVM did not end within 120 s");
        }
        String stderr = java.nio.file.Files.readString(err);
        String line = stderr.lines().filter(l -> l.startsWith("quantcal: error: ")).findFirst().orElse("(no error line)");
        Assertions.assertEquals(1, p.exitValue(), line + "\n" + stderr.lines().filter(l -> l.contains("Exception") || l.contains("Error"))
                .limit(5).toList());
        Assertions.assertEquals("quantcal: error: ran out of memory (Java heap space); " + io.quantcal.kernels.runtime.MemoryException.ADVICE,
                line);
    }

    @Test
    void autoBudgetIsAQuarterOfTheHeapPerConcurrentTask() {
        // 6 GiB heap (deploy/quantcal's default), local[2]: 6 GiB / 4 / 2 = 768 MiB per task
        Assertions.assertEquals(768L << 20, TaskMemory.autoBudget(6L << 30, 2));
        Assertions.assertEquals(1536L << 20, TaskMemory.autoBudget(6L << 30, 1));
        Assertions.assertEquals(1L << 20, TaskMemory.autoBudget(1L << 20, 8), "never below 1 MiB");
    }
}
