package io.quantcal.job.table;

import io.quantcal.job.Cli.UsageException;
import io.quantcal.job.Spark;
import io.quantcal.job.io.HadoopFiles;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;

/** {@code table show} and {@code table export}: the scale table for people and for tools without Spark. */
public final class TableCommands {

    private TableCommands() {}

    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length < 2) throw new UsageException("table needs a command (show or export) and a PATH");
        String cmd = args[0], path = args[1];
        String format = null, file = null;
        int limit = Integer.MAX_VALUE;
        boolean replace = false;
        for (int i = 2; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--replace")) {
                replace = true;
                continue;
            }
            if (i + 1 >= args.length) throw new UsageException("option " + a + " needs a value");
            switch (a) {
                case "--format" -> format = args[++i].toLowerCase(Locale.ROOT);
                case "--out" -> file = args[++i];
                case "--limit" -> limit = Integer.parseInt(args[++i]);
                default -> throw new UsageException("unknown option " + a);
            }
        }
        if (cmd.equals("export") && (format == null || !(format.equals("csv") || format.equals("json")))) {
            throw new UsageException("table export needs --format csv or --format json");
        }
        if (!cmd.equals("show") && !cmd.equals("export")) throw new UsageException("unknown table command '" + cmd + "'");
        boolean shared = Spark.sessionExists();
        SparkSession spark = Spark.local("quantcal-table");
        try {
            path = tablePath(new HadoopFiles(spark.sparkContext().hadoopConfiguration()), path, err);
            List<ScaleRow> rows = ScaleTable.read(spark, path);
            if (cmd.equals("show")) {
                out.print(TableFormats.aligned(rows.subList(0, Math.min(limit, rows.size()))));
                out.println(rows.size() + " rows");
            } else {
                String text = format.equals("csv") ? TableFormats.csv(rows) : TableFormats.json(rows);
                if (file == null) {
                    out.print(text);
                } else {
                    HadoopFiles files = new HadoopFiles(spark.sparkContext().hadoopConfiguration());
                    new io.quantcal.job.io.PathOverlap(files).input("the scale table being exported", path).check("--out", file);
                    if (files.isDirectory(file)) {
                        throw new IllegalStateException("--out " + file + " is a directory; table export writes one file"
                                + " and replaces only a regular file");
                    }
                    if (!replace && files.exists(file)) {
                        throw new IllegalStateException("--out " + file + " already exists (add --replace to replace it)");
                    }
                    org.apache.hadoop.fs.Path f = files.qualify(file);
                    String tmp = new org.apache.hadoop.fs.Path(f.getParent(), "." + f.getName() + ".tmp-"
                            + java.util.UUID.randomUUID().toString().substring(0, 8)).toString();
                    files.writeText(tmp, text);
                    if (files.exists(file)) files.delete(file);
                    files.rename(tmp, file);
                    err.println("wrote " + rows.size() + " rows to " + file);
                }
            }
            return 0;
        } finally {
            if (!shared) spark.stop();
        }
    }

    /**
     * The scale table PATH names: the table directory itself, or a quantcal run directory holding one in
     * {@code scale_table/} (what {@code output.path} named). Anything else is refused here, before Spark, with
     * what was expected, instead of a Parquet reader's stack trace.
     */
    static String tablePath(HadoopFiles files, String path, PrintStream err) {
        if (!files.exists(path)) throw new IllegalArgumentException("table PATH " + path + " does not exist");
        if (!files.isDirectory(path)) {
            throw new IllegalArgumentException("table PATH " + path + " is a file; expected the scale table directory"
                    + " (" + io.quantcal.job.QuantcalJob.SCALE_TABLE + "/ in a quantcal run's output) or the run's output directory");
        }
        if (hasParquet(files, path)) return path;
        String inner = new org.apache.hadoop.fs.Path(files.qualify(path), io.quantcal.job.QuantcalJob.SCALE_TABLE).toString();
        if (files.isDirectory(inner) && hasParquet(files, inner)) {
            err.println("reading " + inner);
            return inner;
        }
        throw new IllegalArgumentException("table PATH " + path + " holds no Parquet files and no " + io.quantcal.job.QuantcalJob.SCALE_TABLE
                + "/ directory with them; expected a quantcal scale table or a run's output directory");
    }

    private static boolean hasParquet(HadoopFiles files, String dir) {
        return files.list(dir).stream().anyMatch(f -> f.isFile() && f.getPath().getName().endsWith(".parquet"));
    }
}
