package io.quantcal.job.table;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/** The scale table: the public contract, schema_version 1, stored as Parquet. */
public final class ScaleTable {

    public static final StructType SCHEMA = new StructType(new StructField[] {
            DataTypes.createStructField("schema_version", DataTypes.IntegerType, false),
            DataTypes.createStructField("run_id", DataTypes.StringType, false),
            DataTypes.createStructField("model", DataTypes.StringType, false),
            DataTypes.createStructField("model_sha256", DataTypes.StringType, false),
            DataTypes.createStructField("tensor", DataTypes.StringType, false),
            DataTypes.createStructField("node", DataTypes.StringType, false),
            DataTypes.createStructField("op_type", DataTypes.StringType, false),
            DataTypes.createStructField("role", DataTypes.StringType, false),
            DataTypes.createStructField("axis", DataTypes.IntegerType, false),
            DataTypes.createStructField("channel", DataTypes.IntegerType, false),
            DataTypes.createStructField("bits", DataTypes.IntegerType, false),
            DataTypes.createStructField("signed", DataTypes.BooleanType, false),
            DataTypes.createStructField("symmetric", DataTypes.BooleanType, false),
            DataTypes.createStructField("scale", DataTypes.DoubleType, false),
            DataTypes.createStructField("zero_point", DataTypes.IntegerType, false),
            DataTypes.createStructField("qmin", DataTypes.IntegerType, false),
            DataTypes.createStructField("qmax", DataTypes.IntegerType, false),
            DataTypes.createStructField("range_min", DataTypes.DoubleType, false),
            DataTypes.createStructField("range_max", DataTypes.DoubleType, false),
            DataTypes.createStructField("method", DataTypes.StringType, false),
            DataTypes.createStructField("metric", DataTypes.StringType, true),
            DataTypes.createStructField("metric_value", DataTypes.DoubleType, true),
            DataTypes.createStructField("metric_baseline", DataTypes.DoubleType, true),
    });

    public static final List<String> COLUMNS = List.of(SCHEMA.fieldNames());

    private ScaleTable() {}

    public static Row toRow(ScaleRow r) {
        return RowFactory.create(r.schemaVersion(), r.runId(), r.model(), r.modelSha256(), r.tensor(), r.node(),
                r.opType(), r.role(), r.axis(), r.channel(), r.bits(), r.signed(), r.symmetric(), r.scale(),
                r.zeroPoint(), r.qmin(), r.qmax(), r.rangeMin(), r.rangeMax(), r.method(), r.metric(),
                r.metricValue(), r.metricBaseline());
    }

    public static ScaleRow fromRow(Row r) {
        return new ScaleRow(r.getInt(0), r.getString(1), r.getString(2), r.getString(3), r.getString(4),
                r.getString(5), r.getString(6), r.getString(7), r.getInt(8), r.getInt(9), r.getInt(10),
                r.getBoolean(11), r.getBoolean(12), r.getDouble(13), r.getInt(14), r.getInt(15), r.getInt(16),
                r.getDouble(17), r.getDouble(18), r.getString(19), r.isNullAt(20) ? null : r.getString(20),
                r.isNullAt(21) ? null : r.getDouble(21), r.isNullAt(22) ? null : r.getDouble(22));
    }

    public static Dataset<Row> toDataFrame(SparkSession spark, List<ScaleRow> rows) {
        List<Row> out = new ArrayList<>(rows.size());
        for (ScaleRow r : rows) out.add(toRow(r));
        return spark.createDataFrame(out, SCHEMA);
    }

    /** Writes the rows as one Parquet file, in the given (deterministic) row order. */
    public static void write(SparkSession spark, List<ScaleRow> rows, String path) {
        toDataFrame(spark, rows).coalesce(1).write().mode(SaveMode.ErrorIfExists).parquet(path);
    }

    /** Reads a scale table, checking the schema version. */
    public static List<ScaleRow> read(SparkSession spark, String path) {
        Dataset<Row> df = spark.read().parquet(path);
        for (String c : COLUMNS) {
            if (!List.of(df.columns()).contains(c)) {
                throw new IllegalArgumentException("scale table " + path + " has no column " + c
                        + ": not a quantcal scale table of schema_version " + ScaleRow.SCHEMA_VERSION);
            }
        }
        List<ScaleRow> rows = new ArrayList<>();
        for (Row r : df.select(COLUMNS.stream().map(org.apache.spark.sql.functions::col)
                .toArray(org.apache.spark.sql.Column[]::new)).collectAsList()) {
            ScaleRow row = fromRow(r);
            if (row.schemaVersion() != ScaleRow.SCHEMA_VERSION) {
                throw new IllegalArgumentException("scale table " + path + " has schema_version " + row.schemaVersion()
                        + ", this quantcal reads " + ScaleRow.SCHEMA_VERSION);
            }
            rows.add(row);
        }
        return rows;
    }

    /** The table's canonical order: node order, then activation, weight, bias, then channel. */
    public static Comparator<ScaleRow> order(List<String> nodeOrder) {
        return Comparator.<ScaleRow>comparingInt(r -> nodeOrder.indexOf(r.node()))
                .thenComparingInt(r -> List.of("activation", "weight", "bias").indexOf(r.role()))
                .thenComparing(ScaleRow::tensor)
                .thenComparingInt(ScaleRow::channel);
    }
}
