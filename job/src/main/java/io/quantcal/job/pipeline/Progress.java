package io.quantcal.job.pipeline;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;
import org.apache.spark.SparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * What a run shows of its Spark work, as a Spark operator expects of a well-behaved application (Iceberg's actions do
 * the same): every pass runs its Spark jobs under a job group {@code quantcal-<run id>-<pass>} (one unit in the Spark
 * UI, cancellable as one) and each step under a description that says what it is ("easyquant wave 3/6, weight grid,
 * 7 layers, 101 candidates"), both cleared when the pass ends; each step prints one progress line on the console with
 * the time the pass has taken and an estimate of what is left; the same lines go to the log through SLF4J, with the
 * run id in the MDC ({@value #MDC_RUN}; executors' task logs get it as {@code mdc.}{@value #MDC_RUN} through Spark's
 * {@code mdc.*} local properties).
 *
 * <p>One per run, owned by its {@link RunContext}; the passes call {@link #step}.
 */
public final class Progress {

    public static final String MDC_RUN = "quantcal.run";
    public static final String MDC_PASS = "quantcal.pass";
    /** Where the console lines start: "progress: ". */
    public static final String PREFIX = "progress: ";

    private static final Logger LOG = LoggerFactory.getLogger(Progress.class);

    private final SparkContext sc;
    private final String runId;
    private final PrintStream console;
    private final LongSupplier nanos;
    private String pass;
    private long passStart;
    private int steps;

    public Progress(SparkContext sc, String runId, PrintStream console) {
        this(sc, runId, console, System::nanoTime);
    }

    Progress(SparkContext sc, String runId, PrintStream console, LongSupplier nanos) {
        this.sc = sc;
        this.runId = runId;
        this.console = console;
        this.nanos = nanos;
    }

    /** Descriptions only, no console and no group: for code that runs a pass's Spark work outside a run (benchmarks). */
    public static Progress quiet(SparkContext sc) {
        return new Progress(sc, null, null);
    }

    /** The job group of a pass of a run. */
    public static String group(String runId, String pass) {
        return "quantcal-" + runId + "-" + pass;
    }

    /** A pass starts: its Spark jobs from here on are in its group, described by its name until its first step. */
    public void beginPass(String name) {
        pass = name;
        passStart = nanos.getAsLong();
        steps = 0;
        if (runId != null) {
            sc.setJobGroup(group(runId, name), name + " (run " + runId + ")", false);
            sc.setLocalProperty("mdc." + MDC_RUN, runId);
        }
        sc.setJobDescription(name);
        MDC.put(MDC_PASS, name);
        LOG.info("{}: started", name);
    }

    /** The pass ended (or failed): group, description and the executors' MDC property are cleared. */
    public void endPass() {
        sc.clearJobGroup();
        sc.setJobDescription(null);
        sc.setLocalProperty("mdc." + MDC_RUN, null);
        if (pass != null) LOG.info("{}: ended after {}", pass, duration(nanos.getAsLong() - passStart));
        MDC.remove(MDC_PASS);
        pass = null;
    }

    /**
     * The Spark jobs from here on do {@code description}; one progress line says so.
     *
     * @param done the share of the pass finished before this step, 0..1 (NaN: unknown); from it and the time so far
     *             comes the estimate of what is left
     */
    public void step(String description, double done) {
        sc.setJobDescription(description);
        if (runId == null) return;
        steps++;
        String line = line(description, steps, nanos.getAsLong() - passStart, done);
        if (console != null) console.println(line);
        LOG.info(line);
    }

    /** A step of unknown share of the pass. */
    public void step(String description) {
        step(description, Double.NaN);
    }

    /** The share done of part {@code part} (1-based) of {@code parts} equal parts, of which {@code within} is done. */
    public static double share(int part, int parts, double within) {
        return (part - 1 + Math.max(0, Math.min(1, within))) / parts;
    }

    /**
     * {@code progress: <description> (step <n>, <elapsed> elapsed[, about <left> left])}; the estimate needs some of
     * the pass done: left = elapsed · (1 − done) / done.
     */
    static String line(String description, int step, long elapsedNanos, double done) {
        StringBuilder b = new StringBuilder(PREFIX).append(description).append(" (step ").append(step).append(", ")
                .append(duration(elapsedNanos)).append(" elapsed");
        if (done > 0 && done < 1 && elapsedNanos > 0) {
            b.append(", about ").append(duration((long) (elapsedNanos * (1 - done) / done))).append(" left");
        }
        return b.append(')').toString();
    }

    /** 0.4 s, 12.3 s, 4 min 05 s, 2 h 03 min. */
    static String duration(long nanos) {
        double s = nanos / 1e9;
        if (s < 60) return String.format(Locale.ROOT, "%.1f s", s);
        long t = Math.round(s);
        if (t < 3600) return String.format(Locale.ROOT, "%d min %02d s", t / 60, t % 60);
        return String.format(Locale.ROOT, "%d h %02d min", t / 3600, t % 3600 / 60);
    }
}
