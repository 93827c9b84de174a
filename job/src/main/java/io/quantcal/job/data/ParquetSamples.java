package io.quantcal.job.data;

import io.quantcal.job.config.QuantcalConfig.Samples;
import java.io.Serializable;
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
 * Parquet samples: the schema checked on the driver before any task (the values column an array of numbers, the
 * label column an integer), then one row at a time in the tasks, every problem named by the data set, the part
 * file and the row in it, the column, what was found and what was expected.
 *
 * <p>Rows come with the part file and the row's index in it from Spark's file metadata ({@code _metadata.file_path},
 * {@code _metadata.row_index}), so that "row 5" is the row a Parquet reader shows for that file.
 */
final class ParquetSamples implements Serializable {

    private static final long serialVersionUID = 1L;

    static final String VALUES_KEY = "quantcal.calibration.parquet.column";
    static final String LABEL_KEY = "quantcal.calibration.parquet.label-column";

    /** "calibration" or "evaluation": which data set, for messages. */
    private final String role;
    private final String path;
    /** The data set's root as Spark qualifies it, to show part files relative to it. */
    private final String root;
    private final String valuesColumn;
    /** null: no label column. */
    private final String labelColumn;
    private final int size;

    private ParquetSamples(String role, String path, String root, String valuesColumn, String labelColumn, int size) {
        this.role = role;
        this.path = path;
        this.root = root;
        this.valuesColumn = valuesColumn;
        this.labelColumn = labelColumn;
        this.size = size;
    }

    /**
     * Checks {@code schema} against what the samples need.
     *
     * @param root the data set's qualified path
     * @param size values per sample (channels x height x width of quantcal.calibration.preprocess)
     * @throws BadSampleException naming the data set, the column, its type and what was expected
     */
    static ParquetSamples check(String role, Samples s, String root, Dataset<Row> df, int size) {
        StructType schema = df.schema();
        String what = "Parquet " + role + " data " + s.path();
        List<String> cols = Arrays.asList(schema.fieldNames());
        if (!cols.contains(s.parquetColumn())) {
            throw new BadSampleException(what + " have no column '" + s.parquetColumn() + "' (" + VALUES_KEY
                    + "); columns: " + cols);
        }
        DataType values = field(schema, s.parquetColumn()).dataType();
        if (!(values instanceof ArrayType a) || !isNumber(a.elementType())) {
            throw new BadSampleException(what + ": column '" + s.parquetColumn() + "' (" + VALUES_KEY + ") is "
                    + describe(values) + example(df, s.parquetColumn(), root) + "; expected an array of numbers (float, double, int, long, ...) with " + size
                    + " values per row (channels x height x width of quantcal.calibration.preprocess)");
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
        return new ParquetSamples(role, s.path(), root, s.parquetColumn(), label, size);
    }

    /** The columns a task reads: values, label (if any), part file, row index in the part file. */
    Dataset<Row> select(Dataset<Row> df) {
        Column file = functions.col("_metadata.file_path");
        Column row = functions.col("_metadata.row_index");
        Column label = labelColumn == null ? functions.lit(null).cast("long") : quoted(labelColumn);
        return df.select(quoted(valuesColumn), label, file, row);
    }

    /** Row {@code r} of {@link #select} as sample {@code id}; problems with the row give a bad sample naming it. */
    Sample sample(long id, Row r) {
        String where = where(r);
        String source = "Parquet " + role + " data " + path + ", column '" + valuesColumn + "', " + where;
        try {
            int label = -1;
            if (labelColumn != null && !r.isNullAt(1)) {
                long l = ((Number) r.get(1)).longValue();
                if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
                    return Sample.bad(id, source, -1, "Parquet " + role + " data " + path + ", label column '"
                            + labelColumn + "', " + where + ": label " + l + " is outside the int range of class indices");
                }
                label = (int) l;
            }
            if (r.isNullAt(0)) {
                return Sample.bad(id, source, label, source + " is null, expected an array of " + size + " numbers");
            }
            List<Object> list = r.getList(0);
            float[] v = new float[list.size()];
            for (int i = 0; i < v.length; i++) {
                Object o = list.get(i);
                if (o == null) return Sample.bad(id, source, label, source + " has a null at index " + i + ", expected a number");
                // every element type the schema check lets through is a Number (Byte ... Long, Float, Double, BigDecimal)
                v[i] = ((Number) o).floatValue();
            }
            return SampleSets.check(new Sample(id, source, label, v, null), size);
        } catch (RuntimeException e) {
            // whatever else a row throws is still that row's problem, named like the others
            return Sample.bad(id, source, -1, source + " cannot be read as an array of " + size + " numbers: " + e);
        }
    }

    private String where(Row r) {
        return where(root, r.isNullAt(2) ? "" : r.getString(2), r.isNullAt(3) ? -1 : r.getLong(3));
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
