package io.quantcal.job.data;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.config.QuantcalConfig.Samples;
import io.quantcal.job.io.HadoopFiles;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.SampleInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Calibration and evaluation samples as an RDD of {@link Sample}, keyed by id. The sample set is chosen on
 * the driver (sorted listing, seeded shuffle, first {@code limit}), so the same config picks the same
 * samples with the same ids on any cluster and for any partition count.
 */
public final class SampleSets {

    private SampleSets() {}

    /** A chosen image: id, path, label (−1 when unlabelled). */
    public record ImageRef(long id, String path, int label) implements Serializable {}

    /** The result of listing: the chosen images and the class names (label index order). */
    public record ImageListing(List<ImageRef> images, List<String> classes) implements Serializable {}

    /**
     * The samples of {@code s} for a model whose inputs are {@code inputs} ({@link InputBinding#of}): images feed the
     * single float input; Parquet rows feed every input from its column.
     */
    public static JavaRDD<Sample> load(SparkSession spark, QuantcalConfig cfg, Samples s, ModelInputs inputs, int partitions) {
        return s.format().equals("parquet") ? parquet(spark, cfg, s, inputs, partitions)
                : images(spark, cfg, s, inputs, partitions);
    }

    public static int partitions(SparkSession spark, Samples s) {
        return s.partitions() > 0 ? s.partitions() : spark.sparkContext().defaultParallelism();
    }

    static boolean isImage(String path) {
        String p = path.toLowerCase(Locale.ROOT);
        return p.endsWith(".png") || p.endsWith(".jpg") || p.endsWith(".jpeg");
    }

    /** The class directories (top-level sub-directories) of an images set labelled by directories; empty otherwise. */
    public static List<String> classDirectories(HadoopFiles files, Samples s) {
        if (!s.format().equals("images") || !s.labels().equals("directories") || s.path().isBlank()
                || !files.isDirectory(s.path())) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        for (var st : files.list(s.path())) if (st.isDirectory()) out.add(st.getPath().getName());
        return out;
    }

    /**
     * The class index of a run: the sorted union of the calibration and evaluation sets' class directories, so an
     * evaluation set that lacks a class keeps every other class's label (its own sorted list would shift them).
     */
    public static List<String> classIndex(HadoopFiles files, QuantcalConfig cfg) {
        TreeSet<String> all = new TreeSet<>(classDirectories(files, cfg.calibration()));
        all.addAll(classDirectories(files, cfg.evaluation()));
        return List.copyOf(all);
    }

    public static ImageListing listImages(HadoopFiles files, Samples s) {
        return listImages(files, s, null);
    }

    /** @param classIndex the label order for directory labels; null: this set's own sorted class directories */
    public static ImageListing listImages(HadoopFiles files, Samples s, List<String> classIndex) {
        String root = files.qualify(s.path()).toString();
        if (!files.isDirectory(root)) {
            throw new BadSampleException("calibration data " + s.path() + " (quantcal.*.path) is not a directory of images");
        }
        List<String> all = new ArrayList<>();
        for (String f : files.listFilesRecursively(root)) if (isImage(f)) all.add(f);
        if (all.isEmpty()) {
            throw new BadSampleException("no PNG or JPEG images under " + s.path());
        }
        String prefix = root.endsWith("/") ? root : root + "/";
        Map<String, Integer> labelOf = new HashMap<>();
        List<String> classes = new ArrayList<>();
        if (s.labels().equals("directories")) {
            TreeSet<String> dirs = new TreeSet<>();
            for (String f : all) {
                String rel = f.substring(prefix.length());
                int slash = rel.indexOf('/');
                if (slash > 0) dirs.add(rel.substring(0, slash));
            }
            if (classIndex != null && classIndex.containsAll(dirs)) classes.addAll(classIndex);
            else classes.addAll(dirs);
            for (String f : all) {
                String rel = f.substring(prefix.length());
                int slash = rel.indexOf('/');
                labelOf.put(f, slash > 0 ? classes.indexOf(rel.substring(0, slash)) : -1);
            }
        } else if (!s.labels().isBlank() && !s.labels().equals("none")) {
            for (String line : files.readText(s.labels()).split("\n")) {
                String l = line.strip();
                if (l.isEmpty() || l.startsWith("#")) continue;
                String[] kv = l.split("[\t,]");
                if (kv.length != 2) {
                    throw new BadSampleException("labels file " + s.labels() + ": line '" + l
                            + "' is not 'relative/path<TAB or comma>label'");
                }
                try {
                    labelOf.put(prefix + kv[0].strip(), Integer.parseInt(kv[1].strip()));
                } catch (NumberFormatException e) {
                    throw new BadSampleException("labels file " + s.labels() + ": label '" + kv[1] + "' is not an integer");
                }
            }
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) order.add(i);
        if (s.limit() > 0 && s.limit() < all.size()) {
            Collections.shuffle(order, new Random(s.seed()));
            order = new ArrayList<>(order.subList(0, s.limit()));
            Collections.sort(order);
        }
        List<ImageRef> refs = new ArrayList<>();
        for (int i = 0; i < order.size(); i++) {
            String f = all.get(order.get(i));
            refs.add(new ImageRef(i, f, labelOf.getOrDefault(f, -1)));
        }
        return new ImageListing(refs, classes);
    }

    private static JavaRDD<Sample> images(SparkSession spark, QuantcalConfig cfg, Samples s, ModelInputs inputs,
                                          int partitions) {
        Configuration hadoop = spark.sparkContext().hadoopConfiguration();
        HadoopFiles driverFiles = new HadoopFiles(hadoop);
        ImageListing listing = listImages(driverFiles, s, classIndex(driverFiles, cfg));
        SerializableConfiguration conf = new SerializableConfiguration(hadoop);
        ImagePreprocessor pre = new ImagePreprocessor(cfg.preprocess());
        int size = inputs.inputs().get(0).size();
        boolean pixels = inputs.inputs().get(0).type() == io.quantcal.kernels.runtime.ElementType.UINT8;
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        return jsc.parallelize(listing.images(), Math.min(partitions, listing.images().size())).map(ref -> {
            HadoopFiles files = new HadoopFiles(conf.value());
            try {
                byte[] bytes = files.readBytes(ref.path());
                return check(ref.id(), ref.path(), ref.label(), pixels ? pre.pixels(ref.path(), bytes)
                        : pre.apply(ref.path(), bytes), size);
            } catch (BadSampleException | java.io.UncheckedIOException e) {
                return Sample.bad(ref.id(), ref.path(), ref.label(), e.getMessage());
            }
        });
    }

    private static JavaRDD<Sample> parquet(SparkSession spark, QuantcalConfig cfg, Samples s, ModelInputs inputs,
                                           int partitions) {
        String role = s == cfg.evaluation() && s != cfg.calibration() ? "evaluation" : "calibration";
        String what = "Parquet " + role + " data " + s.path() + " (quantcal." + role + ".path)";
        Dataset<Row> df;
        try {
            df = spark.read().parquet(s.path());
        } catch (Exception e) {
            throw new BadSampleException("cannot read " + what + ": " + firstLine(e));
        }
        String root = new HadoopFiles(spark.sparkContext().hadoopConfiguration()).qualify(s.path()).toString();
        // the schema on the driver, before any task: a wrong column type fails here, naming column and type
        ParquetSamples reader = ParquetSamples.check(role, s, root, df, inputs, InputBinding.columns(inputs, cfg, s));
        JavaRDD<Row> rows = reader.select(df).javaRDD();
        long n;
        try {
            n = rows.count();
        } catch (Exception e) {
            throw new BadSampleException("cannot read " + what + ": " + firstLine(e));
        }
        long[] chosen = null;
        if (s.limit() > 0 && s.limit() < n) {
            if (n > Integer.MAX_VALUE) throw new BadSampleException(what + ": too many rows to sample");
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < n; i++) order.add(i);
            Collections.shuffle(order, new Random(s.seed()));
            chosen = order.subList(0, s.limit()).stream().mapToLong(Integer::longValue).sorted().toArray();
        }
        final long[] pick = chosen;
        JavaRDD<Sample> samples = rows.zipWithIndex().filter(t -> pick == null || Arrays.binarySearch(pick, t._2()) >= 0)
                .map(t -> {
                    long row = t._2();
                    long id = pick == null ? row : Arrays.binarySearch(pick, row);
                    return reader.sample(id, t._1());
                });
        return samples.repartition(partitions).sortBy(Sample::id, true, partitions);
    }

    /** The first line of the innermost message: Spark's wrappers repeat the stage and the task. */
    private static String firstLine(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String m = root.getMessage() != null ? root.getMessage() : root.toString();
        return m.lines().findFirst().orElse(m);
    }

    /**
     * An image's values (float[], or byte[] of a uint8 input's pixels) as a sample of the single image input, after
     * the size check and, for floats, the finiteness check.
     */
    static Sample check(long id, String source, int label, Object values, int expectedSize) {
        int length = java.lang.reflect.Array.getLength(values);
        if (length != expectedSize) {
            return Sample.bad(id, source, label, source + " has " + length
                    + " values, expected " + expectedSize + " (channels x height x width of quantcal.calibration.preprocess)");
        }
        if (values instanceof float[] f) {
            for (int i = 0; i < f.length; i++) {
                if (!Float.isFinite(f[i])) {
                    return Sample.bad(id, source, label, source + " has a non-finite value (" + f[i] + ") at index " + i);
                }
            }
        }
        return new Sample(id, source, label, SampleInputs.of(values), null);
    }
}
