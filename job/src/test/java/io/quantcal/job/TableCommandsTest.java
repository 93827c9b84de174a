package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.table.ScaleRow;
import io.quantcal.job.table.ScaleTable;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code table show} and {@code table export} on a table written by ScaleTable. */
class TableCommandsTest extends SparkJobTest {

    @TempDir
    Path tmp;

    static final List<ScaleRow> ROWS = List.of(
            new ScaleRow(1, "r1", "m.onnx", "abc", "x", "conv,1", "Conv", "activation", -1, -1, 8, false, false,
                    0.0125, 3, 0, 255, -0.0375, 3.15, "minmax", null, null, null),
            new ScaleRow(1, "r1", "m.onnx", "abc", "w", "conv,1", "Conv", "weight", 0, 0, 8, true, true,
                    0.5, 0, -127, 127, -63.5, 63.5, "easyquant", "cosine", 0.99, 0.98));

    String cli(String... args) {
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        int code = Cli.run(args, new PrintStream(o, true, StandardCharsets.UTF_8), new PrintStream(e, true, StandardCharsets.UTF_8));
        assertEquals(0, code, e.toString(StandardCharsets.UTF_8));
        return o.toString(StandardCharsets.UTF_8);
    }

    @Test
    void showCsvAndJson() throws Exception {
        String path = tmp.resolve("t").toString();
        ScaleTable.write(spark(), ROWS, path);

        String shown = cli("table", "show", path);
        List<String> lines = shown.lines().toList();
        Assertions.assertTrue(lines.get(0).startsWith("schema_version  run_id  model   model_sha256  tensor  node    op_type"), lines.get(0));
        assertEquals(lines.get(0).indexOf("scale "), lines.get(1).indexOf("0.0125"), "columns are aligned");
        assertEquals("2 rows", lines.get(3));

        String csv = cli("table", "export", path, "--format", "csv");
        List<String> c = csv.lines().toList();
        assertEquals(String.join(",", ScaleTable.COLUMNS), c.get(0));
        assertEquals("1,r1,m.onnx,abc,x,\"conv,1\",Conv,activation,-1,-1,8,false,false,0.0125,3,0,255,-0.0375,3.15,minmax,,,",
                c.get(1));

        Path file = tmp.resolve("t.json");
        cli("table", "export", path, "--format", "json", "--out", file.toString());
        List<String> j = Files.readAllLines(file);
        assertEquals(2, j.size());
        JsonNode w = new ObjectMapper().readTree(j.get(1));
        assertEquals(0.99, w.get("metric_value").asDouble());
        assertEquals(-127, w.get("qmin").asInt());
        Assertions.assertTrue(new ObjectMapper().readTree(j.get(0)).get("metric").isNull());
    }

    int code(String... args) {
        return Cli.run(args, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), new PrintStream(console, true,
                StandardCharsets.UTF_8));
    }

    @Test
    void exportReplacesOnlyARegularFileAndNeverTheTable() throws Exception {
        Path run = Files.createDirectories(tmp.resolve("run"));
        String path = run.resolve("scale_table").toString();
        ScaleTable.write(spark(), ROWS, path);
        Files.writeString(run.resolve("run.json"), "{}");

        console.reset();
        assertEquals(1, code("table", "export", path, "--format", "csv", "--out", run.toString()));
        Assertions.assertTrue(console.toString(StandardCharsets.UTF_8).contains("--out " + run + " (file:" + run
                + ") contains the scale table being exported"), console.toString(StandardCharsets.UTF_8));
        assertEquals(1, code("table", "export", path, "--format", "csv", "--out", path + "/x.csv"));
        Path other = Files.createDirectories(tmp.resolve("other"));
        console.reset();
        assertEquals(1, code("table", "export", path, "--format", "csv", "--out", other.toString()));
        Assertions.assertTrue(console.toString(StandardCharsets.UTF_8).contains("is a directory; table export writes one file"),
                console.toString(StandardCharsets.UTF_8));
        Assertions.assertTrue(Files.exists(run.resolve("run.json")));
        assertEquals(2, ScaleTable.read(spark(), path).size(), "the table is intact");

        Path file = Files.writeString(tmp.resolve("t.csv"), "old");
        console.reset();
        assertEquals(1, code("table", "export", path, "--format", "csv", "--out", file.toString()));
        Assertions.assertTrue(console.toString(StandardCharsets.UTF_8).contains("already exists (add --replace to replace it)"));
        assertEquals("old", Files.readString(file));
        assertEquals(0, code("table", "export", path, "--format", "csv", "--out", file.toString(), "--replace"));
        Assertions.assertTrue(Files.readString(file).startsWith("schema_version,"));
        try (var s = Files.list(tmp)) {
            assertEquals(List.of("other", "run", "t.csv"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void aRunDirectoryReadsItsTableAndAnythingElseIsAClearError() throws Exception {
        Path run = Files.createDirectories(tmp.resolve("run"));
        ScaleTable.write(spark(), ROWS, run.resolve("scale_table").toString());
        Path runJson = Files.writeString(run.resolve("run.json"), "{}");
        String direct = cli("table", "export", run.resolve("scale_table").toString(), "--format", "csv");
        assertEquals(direct, cli("table", "export", run.toString(), "--format", "csv"), "the run directory names its table");
        Assertions.assertTrue(direct.lines().count() == 3, direct);

        Path empty = Files.createDirectories(tmp.resolve("empty"));
        for (String[] c : new String[][] {
                {tmp.resolve("missing").toString(), "table PATH " + tmp.resolve("missing") + " does not exist"},
                {runJson.toString(), "table PATH " + runJson + " is a file; expected the scale table directory"},
                {empty.toString(), "table PATH " + empty + " holds no Parquet files and no scale_table/ directory"}}) {
            console.reset();
            assertEquals(1, code("table", "show", c[0]));
            String said = console.toString(StandardCharsets.UTF_8);
            Assertions.assertTrue(said.contains(c[1]), said);
            Assertions.assertFalse(said.contains("\tat "), "no stack trace: " + said);
        }
    }
}
