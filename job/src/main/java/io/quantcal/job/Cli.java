package io.quantcal.job;

import io.quantcal.job.config.ConfigException;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.BadSampleException;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.job.table.TableCommands;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;

/**
 * Command line: {@code run CONFIG [key=value ...]}, {@code table show PATH},
 * {@code table export PATH --format csv|json [--out FILE]}. Exit code 0 on success, 1 with a one-line
 * reason on failure, 2 on a usage error.
 */
public final class Cli {

    static final String USAGE = String.join("\n",
            "usage: quantcal run CONFIG [key=value ...]",
            "       quantcal table show PATH [--limit N]",
            "       quantcal table export PATH --format csv|json [--out FILE [--replace]]");

    private Cli() {}

    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        // Tasks of a failed job may still be inside ONNX Runtime: close every session (waiting for those runs)
        // before exit, or ORT's shutdown hook releases its environment under them (SIGSEGV, exit 134).
        io.quantcal.kernels.runtime.SessionCache.shutdown();
        System.exit(code);
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
            (args.length == 0 ? err : out).println(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        try {
            switch (args[0]) {
                case "run" -> {
                    if (args.length < 2) return usage(err, "run needs a config file");
                    List<String> overrides = Arrays.asList(args).subList(2, args.length);
                    String text = new HadoopFiles(new Configuration()).readText(args[1]);
                    QuantcalConfig cfg = QuantcalConfig.parse(args[1], text, overrides);
                    QuantcalJob.run(cfg, out);
                    return 0;
                }
                case "table" -> {
                    return TableCommands.run(Arrays.copyOfRange(args, 1, args.length), out, err);
                }
                default -> {
                    return usage(err, "unknown command '" + args[0] + "'");
                }
            }
        } catch (UsageException e) {
            return usage(err, e.getMessage());
        } catch (Throwable e) {
            return fail(err, e);
        }
    }

    /** A failed command: one line {@code quantcal: error: <reason>} (and the stack trace with QUANTCAL_DEBUG), exit code 1. */
    static int fail(PrintStream err, Throwable e) {
        err.println("quantcal: error: " + reason(e));
        if (System.getenv("QUANTCAL_DEBUG") != null) e.printStackTrace(err);
        return 1;
    }

    static int usage(PrintStream err, String message) {
        err.println("quantcal: " + message);
        err.println(USAGE);
        return 2;
    }

    /** The one-line reason: our own exceptions' messages win over Spark's wrappers. */
    static String reason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ConfigException || t instanceof BadSampleException
                    || t instanceof io.quantcal.kernels.onnx.ModelException
                    || t instanceof io.quantcal.kernels.runtime.MemoryException) {
                return t.getMessage();
            }
        }
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof OutOfMemoryError) {
                return "ran out of memory" + (t.getMessage() == null ? "" : " (" + t.getMessage() + ")") + "; "
                        + io.quantcal.kernels.runtime.MemoryException.ADVICE;
            }
        }
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String m = e.getMessage() != null ? e.getMessage() : e.toString();
        if (root != e && root.getMessage() != null && !(e instanceof IllegalStateException)) m = root.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    /** Wrong command-line use. */
    public static final class UsageException extends RuntimeException {
        public UsageException(String message) {
            super(message);
        }
    }
}
