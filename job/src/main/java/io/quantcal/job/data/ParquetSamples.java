package io.quantcal.job.data;

import io.quantcal.kernels.runtime.ElementType;
import io.quantcal.job.config.QuantcalConfig.Samples;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.SampleInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Parquet samples: the schema checked on the driver before any task (one column per model input, each an array of
 * numbers its input's element type can take; the label column an integer), then one row at a time in the tasks,
 * every problem named by the data set, the part file and the row in it, the column, the model input, what was found
 * and what was expected.
 *
 * <p>Each column's values are one sample of its input, flattened row-major, converted to the input's element type:
 * float32/float64 inputs take any numbers; int64/int32 inputs take integer columns only (a float column there would
 * have to be rounded: it is refused instead), an int32 input's values must fit 32 bits.
 *
 * <p>Rows come with the part file and the row's index in it from Spark's file metadata ({@code _metadata.file_path},
 * {@code _metadata.row_index}), so that "row 5" is the row a Parquet reader shows for that file.
 */
final class ParquetSamples implements Serializable {

    private static final long serialVersionUID = 1L;

    static final String VALUES_KEY = "quantcal.calibration.parquet.column";
    static final String LABEL_KEY = "quantcal.calibration.parquet.label-column";

    /** A values column and the model input it feeds. */
    private record Feed(String column, String key, ModelInputs.Input input) implements Serializable {
        String expected() {
            return input.size() + " values per row (model input '" + input.name() + "' " + input.type() + " "
                    + shape(input) + ")";
        }
    }

    /** "calibration" or "evaluation": which data set, for messages. */
    private final String role;
    private final String path;
    /** The data set's root as Spark qualifies it, to show part files relative to it. */
    private final String root;
    private final List<Feed> feeds;
    /** null: no label column. */
    private final String labelColumn;

    private ParquetSamples(String role, String path, String root, List<Feed> feeds, String labelColumn) {
        this.role = role;
        this.path = path;
        this.root = root;
        this.feeds = feeds;
        this.labelColumn = labelColumn;
    }

    /** "[N, 1, 28, 28]". */
    static String shape(ModelInputs.Input in) {
        return in.dims();
    }

    /**
     * Checks {@code schema} against what the samples need.
     *
     * @param root    the data set's qualified path
     * @param inputs  the model inputs, in the model's order
     * @param columns the column of each input ({@link InputBinding#columns})
     * @throws BadSampleException naming the data set, the column, the model input, both types and what was expected
     */
    static ParquetSamples check(String role, Samples s, String root, Dataset<Row> df, ModelInputs inputs,
                                List<InputBinding.Column> columns) {
        StructType schema = df.schema();
        String what = "Parquet " + role + " data " + s.path();
        List<String> cols = Arrays.asList(schema.fieldNames());
        List<Feed> feeds = new ArrayList<>();
        for (int i = 0; i < inputs.inputs().size(); i++) {
            ModelInputs.Input in = inputs.inputs().get(i);
            InputBinding.Column c = columns.get(i);
            Feed f = new Feed(c.name(), c.key(), in);
            if (!cols.contains(c.name())) {
                throw new BadSampleException(what + " have no column '" + c.name() + "' for model input '" + in.name()
                        + "' (" + in.type() + " " + shape(in) + "; " + c.key() + "); columns: " + cols);
            }
            DataType values = field(schema, c.name()).dataType();
            if (!(values instanceof ArrayType a) || !isNumber(a.elementType())) {
                boolean nested = values instanceof ArrayType a && a.elementType() instanceof ArrayType;
                throw new BadSampleException(what + ": column '" + c.name() + "' (" + c.key() + ") is "
                        + describe(values) + example(df, c.name(), root) + "; expected an array of numbers (float, double,"
                        + " int, long, ...) with " + f.expected() + (nested ? ", flattened row-major" : ""));
            }
            DataType element = ((ArrayType) values).elementType();
            if (in.type().isInteger() && !isInteger(element)) {
                throw new BadSampleException(what + ": column '" + c.name() + "' (" + c.key() + ") is " + describe(values)
                        + ", model input '" + in.name() + "' is " + in.type() + " " + shape(in)
                        + ": expected an array of integers (int or long) with " + in.size() + " values per row"
                        + " (token ids and masks are not rounded from floats)");
            }
            feeds.add(f);
        }
        String label = s.parquetLabelColumn().isBlank() || !cols.contains(s.parquetLabelColumn()) ? null : s.parquetLabelColumn();
        if (label != null) {
            DataType t = field(schema, label).dataType();
            if (!isInteger(t)) {
                throw new BadSampleException(what + ": label column '" + label + "' (" + LABEL_KEY + ") is "
                        + (t instanceof ArrayType ? describe(t) : "of type " + t.simpleString()) + example(df, label, root) + "; expected an integer column (int or long: the class index); set " + LABEL_KEY
                        + " = \"\" for unlabelled samples");
            }
        }
        return new ParquetSamples(role, s.path(), root, List.copyOf(feeds), label);
    }

    /** The columns a task reads: the values of each input, label (if any), part file, row index in the part file. */
    Dataset<Row> select(Dataset<Row> df) {
        List<Column> out = new ArrayList<>();
        for (Feed f : feeds) out.add(quoted(f.column()));
        out.add(labelColumn == null ? functions.lit(null).cast("long") : quoted(labelColumn));
        out.add(functions.col("_metadata.file_path"));
        out.add(functions.col("_metadata.row_index"));
        return df.select(out.toArray(new Column[0]));
    }

    /** Row {@code r} of {@link #select} as sample {@code id}; problems with the row give a bad sample naming it. */
    Sample sample(long id, Row r) {
        int n = feeds.size();
        String where = where(r, n);
        String data = "Parquet " + role + " data " + path;
        String source = n == 1 ? data + ", column '" + feeds.get(0).column() + "', " + where : data + ", " + where;
        String at = source;
        try {
            int label = -1;
            if (labelColumn != null && !r.isNullAt(n)) {
                long l = ((Number) r.get(n)).longValue();
                if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
                    return Sample.bad(id, source, -1, data + ", label column '" + labelColumn + "', " + where + ": label "
                            + l + " is outside the int range of class indices");
                }
                label = (int) l;
            }
            Object[] values = new Object[n];
            for (int i = 0; i < n; i++) {
                Feed f = feeds.get(i);
                at = data + ", column '" + f.column() + "', " + where;
                if (r.isNullAt(i)) {
                    return Sample.bad(id, source, label, at + " is null, expected an array of " + f.expected());
                }
                List<Object> list = r.getList(i);
                if (list.size() != f.input().size()) {
                    return Sample.bad(id, source, label, at + " has " + list.size() + " values, expected "
                            + f.input().size() + " (model input '" + f.input().name() + "' " + f.input().type() + " "
                            + shape(f.input()) + ")");
                }
                String bad = convert(f, list, values, i);
                if (bad != null) return Sample.bad(id, source, label, at + bad);
            }
            return new Sample(id, source, label, SampleInputs.of(values), null);
        } catch (RuntimeException e) {
            // whatever else a row throws is still that row's problem, named like the others
            return Sample.bad(id, source, -1, at + " cannot be read as model input values: " + e);
        }
    }

    /** Converts one column's list into {@code out[i]} of the input's element type; what is wrong, or null. */
    private static String convert(Feed f, List<Object> list, Object[] out, int i) {
        int size = list.size();
        switch (f.input().type()) {
            case FLOAT -> {
                float[] v = new float[size];
                for (int j = 0; j < size; j++) {
                    Object o = list.get(j);
                    if (o == null) return " has a null at index " + j + ", expected a number";
                    // every element type the schema check lets through is a Number (Byte ... Long, Float, Double, BigDecimal)
                    v[j] = ((Number) o).floatValue();
                    if (!Float.isFinite(v[j])) return " has a non-finite value (" + v[j] + ") at index " + j;
                }
                out[i] = v;
            }
            case DOUBLE -> {
                double[] v = new double[size];
                for (int j = 0; j < size; j++) {
                    Object o = list.get(j);
                    if (o == null) return " has a null at index " + j + ", expected a number";
                    v[j] = ((Number) o).doubleValue();
                    if (!Double.isFinite(v[j])) return " has a non-finite value (" + v[j] + ") at index " + j;
                }
                out[i] = v;
            }
            case INT64, INT32, UINT8 -> {
                // the integer types read alike: each value within the input type's range, then stored in its array
                ElementType t = f.input().type();
                long lo = t == ElementType.INT32 ? Integer.MIN_VALUE : t == ElementType.UINT8 ? 0 : Long.MIN_VALUE;
                long hi = t == ElementType.INT32 ? Integer.MAX_VALUE : t == ElementType.UINT8 ? 255 : Long.MAX_VALUE;
                long[] v = new long[size];
                for (int j = 0; j < size; j++) {
                    Object o = list.get(j);
                    if (o == null) return " has a null at index " + j + ", expected an integer";
                    v[j] = ((Number) o).longValue();
                    if (v[j] < lo || v[j] > hi) {
                        return " has " + v[j] + " at index " + j + ", outside the " + (t == ElementType.UINT8
                                ? "uint8 range 0..255" : "int32 range") + " of model input '" + f.input().name() + "'";
                    }
                }
                out[i] = switch (t) {
                    case INT32 -> {
                        int[] a = new int[size];
                        for (int j = 0; j < size; j++) a[j] = (int) v[j];
                        yield a;
                    }
                    case UINT8 -> {
                        byte[] b = new byte[size];
                        for (int j = 0; j < size; j++) b[j] = (byte) v[j];
                        yield b;
                    }
                    default -> v;
                };
            }
        }
        return null;
    }

    private String where(Row r, int n) {
        return where(root, r.isNullAt(n + 1) ? "" : r.getString(n + 1), r.isNullAt(n + 2) ? -1 : r.getLong(n + 2));
    }

    /** "part file part-00000-….parquet row 5", or "row 5" when the data set is a single file. */
    static String where(String root, String file, long row) {
        String rel = file.startsWith(root + "/") ? file.substring(root.length() + 1) : file;
        String at = row >= 0 ? "row " + row : "a row";
        return rel.isEmpty() || file.equals(root) ? at : "part file " + rel + " " + at;
    }

    /**
     * ", e.g. part file … row 0 holds "0.1,0.5,…"": the first non-null value of a column whose type is wrong, read
     * on the driver (only on that error path) so that the message shows what the data looks like.
     */
    static String example(Dataset<Row> df, String column, String root) {
        try {
            List<Row> first = df.where(quoted(column).isNotNull())
                    .select(quoted(column).cast("string"), functions.col("_metadata.file_path"),
                            functions.col("_metadata.row_index"))
                    .limit(1).collectAsList();
            if (first.isEmpty()) return " (every row is null)";
            Row r = first.get(0);
            String v = r.isNullAt(0) ? "null" : r.getString(0);
            if (v.length() > 40) v = v.substring(0, 40) + "...";
            return ", e.g. " + where(root, r.isNullAt(1) ? "" : r.getString(1), r.isNullAt(2) ? -1 : r.getLong(2))
                    + " holds \"" + v + "\"";
        } catch (RuntimeException e) {
            return ""; // the type is the news; an example is a courtesy
        }
    }

    private static Column quoted(String name) {
        return functions.col("`" + name.replace("`", "``") + "`");
    }

    private static StructField field(StructType schema, String name) {
        return schema.fields()[schema.fieldIndex(name)];
    }

    static boolean isInteger(DataType t) {
        return t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType || t instanceof LongType;
    }

    static boolean isNumber(DataType t) {
        return isInteger(t) || t instanceof FloatType || t instanceof DoubleType || t instanceof DecimalType;
    }

    /** Spark's type name, with a word on the common mistakes. */
    static String describe(DataType t) {
        String name = t.simpleString();
        if (t instanceof ArrayType a) return "an array of " + a.elementType().simpleString() + " (" + name + ")";
        if (isNumber(t)) return "a scalar " + name + " (one number per row, not an array)";
        return "of type " + name;
    }
}
