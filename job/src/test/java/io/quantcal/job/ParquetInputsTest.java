package io.quantcal.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.runtime.InputTensor;
import io.quantcal.kernels.runtime.ElementType;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import onnx.Onnx.ModelProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every input kind, end to end through the job (calibrate, export, evaluate) on Parquet data written here with
 * Spark: two float inputs of rank 2 and 3; int64 token ids through an embedding with an int64 attention mask; a
 * batch dimension fixed to 1. The activation rows of the scale table are checked against the min/max computed in the
 * test from the data (the graph inputs themselves, or the embedding rows the ids gather, masked), with the affine
 * uint8 rule of ONNX Runtime's quantizer written out by hand. Wrong column types, lengths and names, and shapes the
 * model cannot take, stop the run with one line naming the column, the input and both types or shapes, and leave
 * nothing behind.
 */
class ParquetInputsTest extends SparkJobTest {

    @TempDir
    Path tmp;

    // ------------------------------------------------------------------ models

    /** A value info whose dimensions are numbers or, for strings, named symbolic dimensions. */
    static ValueInfoProto value(String name, TensorProto.DataType type, Object... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (Object d : dims) {
            shape.addDim(d instanceof String s ? TensorShapeProto.Dimension.newBuilder().setDimParam(s)
                    : TensorShapeProto.Dimension.newBuilder().setDimValue(((Number) d).longValue()));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape))).build();
    }

    static final TensorProto.DataType F = TensorProto.DataType.FLOAT, I64 = TensorProto.DataType.INT64;

    static float[] ramp(int n, float step, float offset) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = ((i * 7) % 11 - 5) * step + offset;
        return v;
    }

    Path save(String name, ModelProto m) throws Exception {
        Path p = tmp.resolve(name);
        Files.write(p, m.toByteArray());
        return p;
    }

    /** (a) a [N, 6] --Gemm--> [N, 5]; b [N, 3, 4] --MatMul--> [N, 3, 5] --ReduceMean(axis 1)--> [N, 5]; y = sum. */
    Path twoFloatInputs() throws Exception {
        return save("two_inputs.onnx", Graphs.model(13, List.of(
                        Graphs.node("Gemm", "fc_a", List.of("a", "wa", "ba"), List.of("ya")),
                        Graphs.node("MatMul", "mm_b", List.of("b", "wb"), List.of("yb")),
                        Graphs.node("ReduceMean", "mean_b", List.of("yb"), List.of("mb"),
                                Map.of("axes", new long[] {1}, "keepdims", 0L)),
                        Graphs.node("Add", "sum", List.of("ya", "mb"), List.of("y"))),
                List.of(Graphs.floatTensor("wa", ramp(30, 0.1f, 0.05f), 6, 5), Graphs.floatTensor("ba", ramp(5, 0.2f, 0), 5),
                        Graphs.floatTensor("wb", ramp(20, 0.15f, -0.1f), 4, 5)),
                List.of(value("a", F, "batch", 6), value("b", F, "batch", 3, 4)), List.of(value("y", F, "batch", 5))));
    }

    static final int VOCAB = 9, DIM = 4, SEQ = 5, OUT = 3;

    static float[] embedding() {
        return ramp(VOCAB * DIM, 0.3f, 0.1f);
    }

    /** (b) ids [batch, seq] --Gather(emb)--> e; mask [batch, seq] --Cast--> --Unsqueeze--> m; h = e * m; y = h · W. */
    Path tokenModel(Object seq) throws Exception {
        return save("tokens.onnx", Graphs.model(13, List.of(
                        Graphs.node("Gather", "embed", List.of("emb", "ids"), List.of("e"), Map.of("axis", 0L)),
                        Graphs.node("Cast", "mask_f", List.of("mask"), List.of("mf"), Map.of("to", 1L)),
                        Graphs.node("Unsqueeze", "mask_u", List.of("mf", "axes"), List.of("m")),
                        Graphs.node("Mul", "masked", List.of("e", "m"), List.of("h")),
                        Graphs.node("MatMul", "proj", List.of("h", "w"), List.of("y"))),
                List.of(Graphs.floatTensor("emb", embedding(), VOCAB, DIM), Graphs.floatTensor("w", ramp(DIM * OUT, 0.25f, 0), DIM, OUT),
                        Graphs.int64Tensor("axes", new long[] {2}, 1)),
                List.of(value("ids", I64, "batch", seq), value("mask", I64, "batch", seq)),
                List.of(value("y", F, "batch", seq, OUT))));
    }

    /** (c) x [batch0, 25, 96] --MatMul--> [batch0, 25, 8] --Relu-->, the batch fixed by the exporter. */
    Path fixedBatchModel(int batch) throws Exception {
        return save("fixed" + batch + ".onnx", Graphs.model(13, List.of(
                        Graphs.node("MatMul", "frames", List.of("x", "w"), List.of("z")),
                        Graphs.node("Relu", "relu", List.of("z"), List.of("y"))),
                List.of(Graphs.floatTensor("w", ramp(96 * 8, 0.02f, 0), 96, 8)),
                List.of(value("x", F, batch, 25, 96)), List.of(value("y", F, batch, 25, 8))));
    }

    /**
     * (d) an audio-style Conv1d network: x [N, 4, 24] --Conv1d(8, k 3, pad 1)--> Relu --Conv1d(8, k 3, stride 2,
     * dilation 2, pads [2, 1], group 2)--> [N, 8, 11] --ReduceMean(axis 2)--> [N, 8] --Gemm--> y [N, 3].
     */
    Path conv1dModel() throws Exception {
        return save("conv1d.onnx", Graphs.model(13, List.of(
                        Graphs.node("Conv", "c1", List.of("x", "w1", "b1"), List.of("h1"), Map.of("kernel_shape", new long[] {3},
                                "pads", new long[] {1, 1})),
                        Graphs.node("Relu", "r1", List.of("h1"), List.of("a1")),
                        Graphs.node("Conv", "c2", List.of("a1", "w2", "b2"), List.of("h2"), Map.of("kernel_shape", new long[] {3},
                                "strides", new long[] {2}, "dilations", new long[] {2}, "pads", new long[] {2, 1}, "group", 2L)),
                        Graphs.node("ReduceMean", "pool", List.of("h2"), List.of("p"), Map.of("axes", new long[] {2}, "keepdims", 0L)),
                        Graphs.node("Gemm", "fc", List.of("p", "w3", "b3"), List.of("y"), Map.of("transB", 1L))),
                List.of(Graphs.floatTensor("w1", ramp(8 * 4 * 3, 0.11f, 0.02f), 8, 4, 3), Graphs.floatTensor("b1", ramp(8, 0.1f, 0), 8),
                        Graphs.floatTensor("w2", ramp(8 * 4 * 3, 0.13f, -0.03f), 8, 4, 3), Graphs.floatTensor("b2", ramp(8, 0.05f, 0), 8),
                        Graphs.floatTensor("w3", ramp(3 * 8, 0.2f, 0), 3, 8), Graphs.floatTensor("b3", ramp(3, 0.1f, 0), 3)),
                List.of(value("x", F, "batch", 4, 24)), List.of(value("y", F, "batch", 3))));
    }

    @Test
    void conv1dLayersAreSearchedRoundedAndCorrectedAsTheirConv2dOfHeightOne() throws Exception {
        Path model = conv1dModel();
        StructType schema = new StructType().add("x", array(DataTypes.FloatType));
        Random rnd = new Random(21);
        List<Row> rows = new ArrayList<>();
        for (int k = 0; k < 24; k++) rows.add(RowFactory.create(floats(gaussian(rnd, 4 * 24, 1.0))));
        Path data = write("audio.parquet", schema, rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-conv1d", "calibration.parquet.column=x",
                "input-shapes.x=[-1, 4, 24]", "pipeline=[calibrate, easyquant, adaround, bias-correct, export, evaluate]",
                "easyquant.samples=16", "easyquant.segments=20", "adaround.samples=16", "adaround.iterations=200"), out);
        for (String node : List.of("c1", "c2")) {
            ScaleRow a = r.rows().stream().filter(x -> x.node().equals(node) && x.role().equals("activation")).findFirst()
                    .orElseThrow();
            Assertions.assertEquals("easyquant", a.method(), node);
            Assertions.assertTrue(a.metricValue() >= a.metricBaseline(), node + ": EasyQuant keeps or raises the layer's cosine");
            List<ScaleRow> w = r.rows().stream().filter(x -> x.node().equals(node) && x.role().equals("weight")).toList();
            Assertions.assertEquals(8, w.size(), node + ": one weight row per output channel");
            Assertions.assertTrue(w.stream().allMatch(x -> x.method().equals("adaround")), node + ": " + w);
        }
        // the searched and rounded Conv1d layers still compute the FP network: the QDQ model's output tracks FP32
        JsonNode ev = runJson(r).get("passes").get("evaluate");
        Assertions.assertEquals(24, ev.get("samples").asInt());
        Assertions.assertTrue(ev.get("output_sqnr_db").asDouble() > 25, "output SQNR " + ev.get("output_sqnr_db"));
    }

    // ------------------------------------------------------------------ data

    /** Writes {@code rows} with {@code schema} as Parquet (two part files, so rows are named by part file). */
    Path write(String name, StructType schema, List<Row> rows) {
        Path p = tmp.resolve(name);
        spark().createDataFrame(rows, schema).repartition(2).write().parquet(p.toString());
        return p;
    }

    static DataType array(DataType t) {
        return DataTypes.createArrayType(t);
    }

    static List<Float> floats(float[] v) {
        List<Float> l = new ArrayList<>();
        for (float x : v) l.add(x);
        return l;
    }

    static List<Long> longs(long[] v) {
        List<Long> l = new ArrayList<>();
        for (long x : v) l.add(x);
        return l;
    }

    static float[] gaussian(Random r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * scale);
        return v;
    }

    /** Token rows: ids in [0, VOCAB), the first 1 + (row % SEQ) positions unmasked. */
    static List<long[][]> tokenRows(int n) {
        Random r = new Random(5);
        List<long[][]> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            long[] ids = new long[SEQ], mask = new long[SEQ];
            for (int t = 0; t < SEQ; t++) {
                ids[t] = r.nextInt(VOCAB);
                mask[t] = t <= k % SEQ ? 1 : 0;
            }
            out.add(new long[][] {ids, mask});
        }
        return out;
    }

    // ------------------------------------------------------------------ running

    QuantcalConfig config(Path model, Path calib, Path eval, String output, String... more) {
        List<String> o = new ArrayList<>(List.of("calibration.format=parquet", "calibration.partitions=3",
                "evaluation.format=parquet", "evaluation.path=" + eval, "calibration.parquet.label-column="));
        o.addAll(List.of(more));
        return JobFixtures.config(model.toString(), calib.toString(), tmp.resolve(output).toString(), o.toArray(new String[0]));
    }

    String fail(QuantcalConfig cfg) {
        RuntimeException e = Assertions.assertThrows(RuntimeException.class, () -> QuantcalJob.run(spark(), cfg, out));
        Path output = Path.of(cfg.outputPath().replaceFirst("^file:", ""));
        Assertions.assertFalse(Files.exists(output), "a failed run leaves no output");
        try (Stream<Path> left = Files.list(output.getParent())) {
            List<String> names = left.map(p -> p.getFileName().toString())
                    .filter(n -> n.contains(output.getFileName().toString())).toList();
            Assertions.assertEquals(List.of(), names, "nothing beside the output either (temporary directory, lock)");
        } catch (java.io.IOException x) {
            throw new java.io.UncheckedIOException(x);
        }
        String reason = Cli.reason(e);
        Assertions.assertEquals(1, reason.lines().count(), reason);
        return reason;
    }

    /** The activation row of {@code node}; its scale and zero point are the affine uint8 ones of [lo, hi]. */
    static ScaleRow assertActivation(List<ScaleRow> rows, String node, String tensor, double lo, double hi) {
        // (the ort profile also quantizes a layer's output: mm_b's, read by a ReduceMean, has its row under mm_b)
        List<ScaleRow> a = rows.stream().filter(r -> r.node().equals(node) && r.role().equals("activation")
                && r.tensor().equals(tensor)).toList();
        Assertions.assertEquals(1, a.size(), "one activation row for " + node + " input " + tensor);
        ScaleRow r = a.get(0);
        // ONNX Runtime's quantizer rule, by hand: the range widened to hold 0, 255 steps, zero point rounded
        double l = Math.min(lo, 0), h = Math.max(hi, 0);
        double scale = (float) ((h - l) / 255);
        int zp = (int) Math.max(0, Math.min(255, Math.rint(-l / scale)));
        Assertions.assertEquals(scale, r.scale(), 0.0, node + ": scale of [" + lo + ", " + hi + "]");
        Assertions.assertEquals(zp, r.zeroPoint(), node + ": zero point of [" + lo + ", " + hi + "]");
        Assertions.assertTrue(r.rangeMin() <= l + scale / 2 && r.rangeMax() >= h - scale / 2, node + ": the grid covers the data");
        return r;
    }

    static JsonNode runJson(QuantcalJob.Result r) throws Exception {
        return new ObjectMapper().readTree(AdaRoundPassTest.local(r.output()).resolve("run.json").toFile());
    }

    // ------------------------------------------------------------------ (a) several float inputs, rank 2 and 3

    @Test
    void twoFloatInputsOfRankTwoAndThreeAreCalibratedFromTheirOwnColumns() throws Exception {
        Path model = twoFloatInputs();
        StructType schema = new StructType().add("a", array(DataTypes.FloatType)).add("b", array(DataTypes.DoubleType));
        Random rnd = new Random(1);
        List<Row> rows = new ArrayList<>();
        double aLo = Double.POSITIVE_INFINITY, aHi = Double.NEGATIVE_INFINITY, bLo = aLo, bHi = aHi;
        for (int k = 0; k < 30; k++) {
            float[] a = gaussian(rnd, 6, 2.0);
            float[] b = gaussian(rnd, 12, 0.5);
            for (float v : a) { aLo = Math.min(aLo, v); aHi = Math.max(aHi, v); }
            List<Double> bd = new ArrayList<>();
            for (float v : b) { bLo = Math.min(bLo, v); bHi = Math.max(bHi, v); bd.add((double) v); }
            rows.add(RowFactory.create(floats(a), bd));
        }
        Path data = write("two.parquet", schema, rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-a"), out);
        assertActivation(r.rows(), "fc_a", "a", aLo, aHi);
        assertActivation(r.rows(), "mm_b", "b", bLo, bHi);
        JsonNode run = runJson(r);
        Assertions.assertEquals(30, run.get("passes").get("calibrate").get("samples").asInt());
        JsonNode ev = run.get("passes").get("evaluate");
        Assertions.assertEquals(30, ev.get("samples").asInt());
        Assertions.assertEquals(0, ev.get("labelled").asInt(), "no label column: labels stay optional");
        Assertions.assertTrue(ev.get("output_cosine").asDouble() > 0.99, ev.toString());
        Assertions.assertTrue(Files.exists(AdaRoundPassTest.local(r.output()).resolve("model_qdq.onnx")));
    }

    // ------------------------------------------------------------------ (b) int64 token ids and attention mask

    /** h's min and max over the rows, by hand: the embedding row of each id times its mask bit. */
    static double[] maskedEmbeddingRange(List<long[][]> rows) {
        float[] e = embedding();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (long[][] row : rows) {
            for (int t = 0; t < SEQ; t++) {
                for (int d = 0; d < DIM; d++) {
                    float v = e[(int) row[0][t] * DIM + d] * row[1][t];
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        return new double[] {lo, hi};
    }

    Path tokenData(String name, List<long[][]> rows) {
        StructType schema = new StructType().add("ids", array(DataTypes.LongType)).add("mask", array(DataTypes.LongType))
                .add("label", DataTypes.IntegerType);
        List<Row> r = new ArrayList<>();
        for (int k = 0; k < rows.size(); k++) {
            r.add(RowFactory.create(longs(rows.get(k)[0]), longs(rows.get(k)[1]), k % OUT));
        }
        return write(name, schema, r);
    }

    static final String[] SHAPES = {"input-shapes.ids=[-1, 5]", "input-shapes.mask=[-1,5]",
            "calibration.parquet.label-column=label"};

    @Test
    void int64TokenIdsAndAMaskFeedAnEmbeddingAndOnlyItsFloatOutputIsQuantized() throws Exception {
        Path model = tokenModel("seq");
        List<long[][]> rows = tokenRows(24);
        Path data = tokenData("tokens.parquet", rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-b", SHAPES), out);
        double[] range = maskedEmbeddingRange(rows);
        Assertions.assertTrue(range[0] < 0 && range[1] > 0, "the data exercise both signs");
        assertActivation(r.rows(), "proj", "h", range[0], range[1]);
        Assertions.assertTrue(r.rows().stream().noneMatch(x -> x.tensor().equals("ids") || x.tensor().equals("mask")),
                "integer inputs are never quantized");
        JsonNode passes = runJson(r).get("passes");
        Assertions.assertEquals("[\"ids int64 [N, 5]\",\"mask int64 [N, 5]\"]", passes.get("calibrate").get("inputs").toString());
        Assertions.assertEquals(50, passes.get("calibrate").get("batch_per_run").asInt());
        JsonNode ev = passes.get("evaluate");
        Assertions.assertEquals(24, ev.get("samples").asInt());
        Assertions.assertEquals(24, ev.get("labelled").asInt());

        // the exported QDQ model takes the same int64 inputs in ONNX Runtime
        OnnxModel qdq = OnnxModel.load(AdaRoundPassTest.local(r.output()).resolve("model_qdq.onnx"));
        try (ModelRunner q = ModelRunner.open(qdq, RunnerOptions.singleThreaded())) {
            Map<String, InputTensor> feed = new LinkedHashMap<>();
            feed.put("ids", new InputTensor("ids", ElementType.INT64, new long[] {1, SEQ}, rows.get(0)[0]));
            feed.put("mask", new InputTensor("mask", ElementType.INT64, new long[] {1, SEQ}, rows.get(0)[1]));
            Assertions.assertEquals(SEQ * OUT, q.runInputs(feed).get("y").data().length);
        }

        // the same through the mapping of inputs to other column names, and with 1 partition: the same table
        StructType renamed = new StructType().add("token_ids", array(DataTypes.LongType))
                .add("attention", array(DataTypes.IntegerType));
        List<Row> rr = new ArrayList<>();
        for (long[][] row : rows) {
            List<Integer> m = new ArrayList<>();
            for (long v : row[1]) m.add((int) v);
            rr.add(RowFactory.create(longs(row[0]), m));
        }
        Path mapped = write("mapped.parquet", renamed, rr);
        QuantcalJob.Result r2 = QuantcalJob.run(spark(), config(model, mapped, mapped, "out-b2", "input-shapes.ids=[-1, 5]",
                "input-shapes.mask=[-1,5]", "calibration.parquet.inputs.ids=token_ids",
                "calibration.parquet.inputs.mask=attention", "calibration.partitions=1"), out);
        Assertions.assertEquals(r.rows(), r2.rows(), "mapped columns (int32 mask column) and 1 partition: the same table");
    }

    @Test
    void wrongColumnTypeLengthOrNameIsNamedWithColumnInputAndBothTypesOrShapes() throws Exception {
        Path model = tokenModel("seq");
        List<long[][]> rows = tokenRows(8);
        Path good = tokenData("good.parquet", rows);

        // float ids: refused before any task, not rounded
        StructType floatIds = new StructType().add("ids", array(DataTypes.FloatType)).add("mask", array(DataTypes.LongType));
        List<Row> fr = new ArrayList<>();
        for (long[][] row : rows) {
            List<Float> ids = new ArrayList<>();
            for (long v : row[0]) ids.add((float) v);
            fr.add(RowFactory.create(ids, longs(row[1])));
        }
        Path floats = write("float-ids.parquet", floatIds, fr);
        String msg = fail(config(model, floats, good, "err1", SHAPES));
        Assertions.assertTrue(msg.startsWith("Parquet calibration data file:" + floats + ": column 'ids'"), msg);
        Assertions.assertTrue(msg.contains("is an array of float (array<float>), model input 'ids' is int64 [N, 5]")
                && msg.contains("expected an array of integers (int or long) with 5 values per row"), msg);

        // a row of the wrong length: named by part file, row, column and input, with both lengths
        StructType schema = new StructType().add("ids", array(DataTypes.LongType)).add("mask", array(DataTypes.LongType));
        List<Row> sr = new ArrayList<>();
        for (int k = 0; k < rows.size(); k++) {
            long[] mask = k == 3 ? new long[] {1, 1, 0} : rows.get(k)[1];
            sr.add(RowFactory.create(longs(rows.get(k)[0]), longs(mask)));
        }
        Path shortRow = tmp.resolve("short.parquet");
        spark().createDataFrame(sr, schema).coalesce(1).write().parquet(shortRow.toString());
        msg = fail(config(model, shortRow, good, "err2", SHAPES));
        Assertions.assertTrue(msg.startsWith("Parquet calibration data file:" + shortRow + ", column 'mask', part file part-00000-"), msg);
        Assertions.assertTrue(msg.contains(".parquet row 3 has 3 values, expected 5 (model input 'mask' int64 [N, 5])"), msg);

        // a mapped column that is not there: column, input, its type and shape, the key, the columns there are
        msg = fail(config(model, good, good, "err3", JobFixtures.concat(SHAPES, "calibration.parquet.inputs.ids=tokens")));
        Assertions.assertEquals("Parquet calibration data file:" + good + " have no column 'tokens' for model input 'ids' (int64 [N, 5];"
                + " quantcal.calibration.parquet.inputs.ids); columns: [ids, mask, label]", msg);

        // the evaluation data go through the same checks, named as such
        msg = fail(config(model, good, floats, "err4", JobFixtures.concat(SHAPES, "pipeline=[calibrate, evaluate]")));
        Assertions.assertTrue(msg.startsWith("Parquet evaluation data file:" + floats + ": column 'ids'"), msg);
    }

    @Test
    void shapesTheModelCannotTakeAreNamedBeforeAnyWork() throws Exception {
        Path model = tokenModel("seq");
        Path data = tokenData("d.parquet", tokenRows(4));
        String msg = fail(config(model, data, data, "s1"));
        Assertions.assertEquals("model input ids of file:" + model + " has shape [-1, -1]: dimension 1 is not fixed by the model; declare it:"
                + " quantcal.input-shapes.ids = [-1, <size>] (batch first, -1 for the batch)", msg);
        msg = fail(config(model, data, data, "s2", "input-shapes.ids=[-1, 5]", "input-shapes.mask=[-1, 5]",
                "input-shapes.idz=[-1, 5]"));
        Assertions.assertTrue(msg.startsWith("quantcal.input-shapes names 'idz', which is not an input of the model"), msg);
        Assertions.assertTrue(msg.endsWith("its inputs: [ids, mask]"), msg);
        msg = fail(config(model, data, data, "s3", "input-shapes.ids=[-1, 5, 2]", "input-shapes.mask=[-1, 5]"));
        Assertions.assertEquals("model input ids of file:" + model + " has shape [-1, -1] (rank 2), quantcal.input-shapes.ids = [-1, 5, 2] gives rank 3", msg);

        Path fixed = fixedBatchModel(1);
        msg = fail(config(fixed, data, data, "s4", "calibration.parquet.column=x", "input-shapes.x=[-1, 24, 96]"));
        Assertions.assertEquals("model input x of file:" + fixed + " has shape [1, 25, 96], quantcal.input-shapes.x = [-1, 24, 96]:"
                + " dimension 1 differs (25 against 24)", msg);
        Path four = fixedBatchModel(4);
        msg = fail(config(four, data, data, "s5", "calibration.parquet.column=x"));
        Assertions.assertTrue(msg.startsWith("model input x of file:" + four + " has shape [4, 25, 96]: its first (batch) dimension is"
                + " fixed to 4; quantcal runs batches of any size, or one sample at a time"), msg);
        // a recurrent state laid out [layers, batch, hidden] (Silero VAD's state [2, N, 128]): the fixed first
        // dimension is refused before the open one is asked for, and the message says why
        Path state = save("state.onnx", Graphs.model(13, List.of(
                        Graphs.node("MatMul", "frames", List.of("x", "w"), List.of("y"))),
                List.of(Graphs.floatTensor("w", ramp(96 * 8, 0.02f, 0), 96, 8)),
                List.of(value("x", F, 2, "batch", 96)), List.of(value("y", F, 2, "batch", 8))));
        msg = fail(config(state, data, data, "s6", "calibration.parquet.column=x"));
        Assertions.assertEquals("model input x of file:" + state + " has shape [2, -1, 96]: its first (batch) dimension is fixed"
                + " to 2; quantcal runs batches of any size, or one sample at a time when the batch is fixed to 1. Export the"
                + " model with a dynamic batch (or batch 1); its dimension 1 is open: if that is the batch (a sequence-first"
                + " input [T, N, F], a recurrent state [layers, N, hidden]), declare it: quantcal.input-batch-axes.x = 1", msg);
    }

    @Test
    void easyQuantAdaRoundAndBiasCorrectionTakeTokenInputsToo() throws Exception {
        Path model = tokenModel("seq");
        List<long[][]> rows = tokenRows(16);
        Path data = tokenData("search.parquet", rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-search", JobFixtures.concat(SHAPES,
                "pipeline=[calibrate, easyquant, adaround, bias-correct, export, evaluate]", "easyquant.samples=8",
                "easyquant.segments=10", "adaround.samples=8", "adaround.iterations=20")), out);
        ScaleRow a = r.rows().stream().filter(x -> x.node().equals("proj") && x.role().equals("activation")).findFirst()
                .orElseThrow();
        Assertions.assertEquals("easyquant", a.method());
        Assertions.assertTrue(a.metricValue() >= a.metricBaseline(), "EasyQuant keeps or raises the layer's cosine");
        Assertions.assertTrue(r.rows().stream().anyMatch(x -> x.role().equals("weight") && x.method().equals("adaround")));
        Assertions.assertEquals(16, runJson(r).get("passes").get("evaluate").get("samples").asInt());
    }

    // ------------------------------------------------------------------ (c) batch dimension fixed to 1

    @Test
    void aBatchFixedToOneIsRunOneSampleAtATime() throws Exception {
        Path model = fixedBatchModel(1);
        StructType schema = new StructType().add("frames", array(DataTypes.FloatType));
        Random rnd = new Random(9);
        List<Row> rows = new ArrayList<>();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < 11; k++) {
            float[] x = gaussian(rnd, 25 * 96, 1.5);
            for (float v : x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            rows.add(RowFactory.create(floats(x)));
        }
        Path data = write("frames.parquet", schema, rows);
        // batch-size 4 asked for: ONNX Runtime would refuse [4, 25, 96]; the run adapts to the model's batch of 1
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-c", "calibration.parquet.column=frames",
                "calibration.batch-size=4"), out);
        assertActivation(r.rows(), "frames", "x", lo, hi);
        JsonNode passes = runJson(r).get("passes");
        Assertions.assertEquals("[\"x float32 [N, 25, 96]\"]", passes.get("calibrate").get("inputs").toString());
        Assertions.assertEquals(1, passes.get("calibrate").get("batch_per_run").asInt(), "the model's batch of 1");
        JsonNode ev = passes.get("evaluate");
        Assertions.assertEquals(11, ev.get("samples").asInt());
    }

    @Test
    void uint8PixelsComeFromIntegerColumnsInTheirRange() throws Exception {
        Path model = tmp.resolve("u8.onnx");
        Files.write(model, io.quantcal.kernels.onnx.TestModels.normalisesItsInput(true).toByteArray());
        StructType schema = new StructType().add("pixels", array(DataTypes.IntegerType));
        Random rnd = new Random(4);
        List<Row> rows = new ArrayList<>();
        int max = 0;
        for (int k = 0; k < 12; k++) {
            List<Integer> px = new ArrayList<>();
            for (int i = 0; i < 28 * 28; i++) {
                int v = rnd.nextInt(200);
                max = Math.max(max, v);
                px.add(v);
            }
            rows.add(RowFactory.create(px));
        }
        Path data = write("pixels.parquet", schema, rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "out-u8", "calibration.parquet.column=pixels"), out);
        // the Conv reads pixel / 255: its input's range is [0, max / 255]
        assertActivation(r.rows(), "conv1", "xt", 0, max / 255f);
        Assertions.assertEquals("[\"x uint8 [N, 28, 28, 1]\"]", runJson(r).get("passes").get("calibrate").get("inputs").toString());

        // a value outside 0..255 is named with its row, index and the input
        rows.set(5, RowFactory.create(java.util.Collections.nCopies(28 * 28, 256)));
        Path bad = tmp.resolve("bad-pixels.parquet");
        spark().createDataFrame(rows, schema).coalesce(1).write().parquet(bad.toString());
        String msg = fail(config(model, bad, data, "err-u8", "calibration.parquet.column=pixels"));
        Assertions.assertTrue(msg.contains(".parquet row 5 has 256 at index 0, outside the uint8 range 0..255 of model input 'x'"), msg);
    }

    /** x [5, N, 3] (sequence first) → Transpose → [N, 5, 3], or x [N, 5, 3]; → MatMul "proj" [3, 4] → mean over time → y [N, 4]. */
    /** Rows of one float array column, and the least and greatest value over all of them. */
    record GaussianRows(List<Row> rows, double lo, double hi) {}

    /** {@code n} rows of {@code length} Gaussian values of deviation {@code sd}, seeded. */
    static GaussianRows gaussianRows(long seed, int n, int length, double sd) {
        Random rnd = new Random(seed);
        List<Row> rows = new ArrayList<>();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < n; k++) {
            float[] v = gaussian(rnd, length, sd);
            for (float f : v) { lo = Math.min(lo, f); hi = Math.max(hi, f); }
            rows.add(RowFactory.create(floats(v)));
        }
        return new GaussianRows(rows, lo, hi);
    }

    private Path sequenceModel(boolean seqFirst) throws Exception {
        io.quantcal.kernels.onnx.TestModels.Builder b = new io.quantcal.kernels.onnx.TestModels.Builder(12);
        String x = "x";
        if (seqFirst) {
            b.node(io.quantcal.kernels.onnx.Graphs.node("Transpose", "batch_first", List.of("x"), List.of("xt"),
                    Map.of("perm", new long[] {1, 0, 2})));
            x = "xt";
        }
        b.matMul("proj", x, "h", 3, 4);
        b.node(io.quantcal.kernels.onnx.Graphs.node("ReduceMean", "time_mean", List.of("h"), List.of("y"),
                Map.of("axes", new long[] {1}, "keepdims", 0L)));
        var m = b.build(13, List.of(seqFirst ? io.quantcal.kernels.onnx.Graphs.floatValue("x", 5, -1, 3)
                : io.quantcal.kernels.onnx.Graphs.floatValue("x", -1, 5, 3)), List.of(io.quantcal.kernels.onnx.Graphs.floatValue("y", -1, 4)));
        Path file = tmp.resolve(seqFirst ? "seq-first.onnx" : "batch-first.onnx");
        Files.write(file, m.toByteArray());
        return file;
    }

    @Test
    void aSequenceFirstInputIsFedOneSampleAtItsBatchAxis() throws Exception {
        StructType schema = new StructType().add("frames", array(DataTypes.FloatType));
        GaussianRows g = gaussianRows(21, 9, 15, 1.2);
        double lo = g.lo(), hi = g.hi();
        Path data = write("frames-seq.parquet", schema, g.rows());
        Path seq = sequenceModel(true), twin = sequenceModel(false);
        // without the key: the message says which axis is open and how to declare it
        String msg = fail(config(seq, data, data, "seq-err", "calibration.parquet.column=frames"));
        Assertions.assertTrue(msg.contains("its dimension 1 is open: if that is the batch (a sequence-first input [T, N, F],"
                + " a recurrent state [layers, N, hidden]), declare it: quantcal.input-batch-axes.x = 1"), msg);

        QuantcalJob.Result a = QuantcalJob.run(spark(), config(seq, data, data, "seq", "calibration.parquet.column=frames",
                "input-batch-axes.x=1", "calibration.batch-size=4"), out);
        QuantcalJob.Result b = QuantcalJob.run(spark(), config(twin, data, data, "twin", "calibration.parquet.column=frames"), out);
        // the MatMul reads the same values: the same parameters (by hand: ORT's rule on the data's range)
        ScaleRow ra = assertActivation(a.rows(), "proj", "xt", lo, hi), rb = assertActivation(b.rows(), "proj", "x", lo, hi);
        Assertions.assertEquals(rb.scale(), ra.scale(), 0.0);
        Assertions.assertEquals(rb.zeroPoint(), ra.zeroPoint());
        JsonNode pa = runJson(a).get("passes"), pb = runJson(b).get("passes");
        Assertions.assertEquals("[\"x float32 [5, N, 3]\"]", pa.get("calibrate").get("inputs").toString());
        Assertions.assertEquals(1, pa.get("calibrate").get("batch_per_run").asInt(), "one sample per run");
        Assertions.assertEquals(9, pa.get("evaluate").get("samples").asInt());
        Assertions.assertEquals(pb.get("evaluate").get("output_sqnr_db").asDouble(), pa.get("evaluate").get("output_sqnr_db").asDouble(), 1e-9);

        // an axis the input does not have, or one the model fixes, is named
        msg = fail(config(seq, data, data, "seq-err2", "calibration.parquet.column=frames", "input-batch-axes.x=3"));
        Assertions.assertTrue(msg.startsWith("quantcal.input-batch-axes.x = 3: model input x of "), msg);
        Assertions.assertTrue(msg.endsWith("has shape [5, -1, 3] (rank 3), no axis 3"), msg);
        msg = fail(config(seq, data, data, "seq-err3", "calibration.parquet.column=frames", "input-batch-axes.x=2"));
        Assertions.assertTrue(msg.endsWith("whose dimension 2 is fixed to 3: a batch axis must be open (or 1)"), msg);
    }
    @Test
    void aScalarInputTakesOneValuePerSampleOneSamplePerRun() throws Exception {
        // x [N, 5, 3] times a scalar gain [] (Silero VAD's sample rate, a TTS model's speed: inputs without a batch)
        io.quantcal.kernels.onnx.TestModels.Builder b = new io.quantcal.kernels.onnx.TestModels.Builder(13);
        b.node(io.quantcal.kernels.onnx.Graphs.node("Mul", "gain_mul", List.of("x", "gain"), List.of("xs")));
        b.matMul("proj", "xs", "h", 3, 4);
        b.node(io.quantcal.kernels.onnx.Graphs.node("ReduceMean", "time_mean", List.of("h"), List.of("y"),
                Map.of("axes", new long[] {1}, "keepdims", 0L)));
        var m = b.build(13, List.of(io.quantcal.kernels.onnx.Graphs.floatValue("x", -1, 5, 3),
                io.quantcal.kernels.onnx.Graphs.floatValue("gain")), List.of(io.quantcal.kernels.onnx.Graphs.floatValue("y", -1, 4)));
        Path model = tmp.resolve("scalar-gain.onnx");
        Files.write(model, m.toByteArray());
        StructType schema = new StructType().add("x", array(DataTypes.FloatType)).add("gain", array(DataTypes.FloatType));
        Random rnd = new Random(23);
        List<Row> rows = new ArrayList<>();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < 9; k++) {
            float[] v = gaussian(rnd, 15, 1.0);
            float g = 0.5f + 0.25f * k;
            // the MatMul reads x · gain, each product rounded to float32 as ONNX Runtime's Mul rounds it
            for (float f : v) { lo = Math.min(lo, f * g); hi = Math.max(hi, f * g); }
            rows.add(RowFactory.create(floats(v), floats(new float[] {g})));
        }
        Path data = write("scalar-gain.parquet", schema, rows);
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "scalar", "calibration.batch-size=4"), out);
        assertActivation(r.rows(), "proj", "xs", lo, hi);
        JsonNode p = runJson(r).get("passes");
        Assertions.assertEquals("[\"x float32 [N, 5, 3]\",\"gain float32 [] (no batch dimension)\"]",
                p.get("calibrate").get("inputs").toString());
        Assertions.assertEquals(1, p.get("calibrate").get("batch_per_run").asInt(), "one sample per run");
        Assertions.assertEquals(9, p.get("evaluate").get("samples").asInt());
        Assertions.assertTrue(p.get("evaluate").get("output_sqnr_db").asDouble() > 30, p.get("evaluate").toString());

        // a gain column of two values per row is that row's error, naming the input and its shape
        List<Row> two = List.of(RowFactory.create(floats(gaussian(rnd, 15, 1.0)), floats(new float[] {1f, 2f})));
        String msg = fail(config(model, write("scalar-two.parquet", schema, two), data, "scalar-err"));
        Assertions.assertTrue(msg.contains("column 'gain'") && msg.contains("has 2 values, expected 1 (model input 'gain'"
                + " float32 [])"), msg);
    }
    @Test
    void aMatMulWithItsConstantFirstIsQuantizedThroughTheWholeJob() throws Exception {
        // y = mix · x (mix [4, 6] constant, x [N, 6, 5]), then a mean over the last axis: listed FP32 before
        io.quantcal.kernels.onnx.TestModels.Builder b = new io.quantcal.kernels.onnx.TestModels.Builder(19);
        b.randomInit("mix", 0.4, 4, 6);
        b.node(io.quantcal.kernels.onnx.Graphs.node("MatMul", "mixing", List.of("mix", "x"), List.of("h")));
        b.node(io.quantcal.kernels.onnx.Graphs.node("ReduceMean", "mean", List.of("h"), List.of("y"),
                Map.of("axes", new long[] {2}, "keepdims", 0L)));
        var m = b.build(13, List.of(io.quantcal.kernels.onnx.Graphs.floatValue("x", -1, 6, 5)),
                List.of(io.quantcal.kernels.onnx.Graphs.floatValue("y", -1, 4)));
        Path model = tmp.resolve("mixing.onnx");
        Files.write(model, m.toByteArray());
        StructType schema = new StructType().add("features", array(DataTypes.FloatType));
        GaussianRows g = gaussianRows(29, 12, 30, 1.0);
        double lo = g.lo(), hi = g.hi();
        Path data = write("mixing.parquet", schema, g.rows());
        java.io.ByteArrayOutputStream text = new java.io.ByteArrayOutputStream();
        QuantcalJob.Result r = QuantcalJob.run(spark(), config(model, data, data, "mixing"),
                new java.io.PrintStream(text, true, java.nio.charset.StandardCharsets.UTF_8));
        String console = text.toString(java.nio.charset.StandardCharsets.UTF_8);
        Assertions.assertTrue(console.contains("model: 1 MatMul W * x with a constant first operand written as"
                + " (x^T * W^T)^T, its constant a weight [mixing]\ncoverage: 1 of 1 "), console);
        // its input row: x's values, transposed (by hand: ORT's rule on the data's range); W's rows its channels
        assertActivation(r.rows(), "mixing", "x_transposed", lo, hi);
        Assertions.assertEquals(4, r.rows().stream().filter(x -> x.node().equals("mixing") && x.role().equals("weight")).count(),
                "one weight row per row of W");
        JsonNode run = runJson(r);
        Assertions.assertEquals("[\"mixing\"]", run.get("front_end").get("constant_first_matmuls").toString());
        double sqnr = run.get("passes").get("evaluate").get("output_sqnr_db").asDouble();
        Assertions.assertTrue(sqnr > 30, "output SQNR " + sqnr);
    }
}
