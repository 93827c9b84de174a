package io.quantcal.job.table;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;

/** Text renderings of a scale table: aligned columns, CSV (RFC 4180, schema column names), JSON lines. */
public final class TableFormats {

    private TableFormats() {}

    static List<String> cells(ScaleRow r) {
        Row row = ScaleTable.toRow(r);
        List<String> c = new ArrayList<>(ScaleTable.COLUMNS.size());
        for (int i = 0; i < ScaleTable.COLUMNS.size(); i++) {
            Object o = row.get(i);
            c.add(o == null ? "" : o instanceof Double d ? formatDouble(d) : o.toString());
        }
        return c;
    }

    /** Shortest decimal that reads back to the same double. */
    static String formatDouble(double d) {
        return Double.toString(d);
    }

    public static String aligned(List<ScaleRow> rows) {
        List<List<String>> all = new ArrayList<>();
        all.add(ScaleTable.COLUMNS);
        for (ScaleRow r : rows) all.add(cells(r));
        int[] width = new int[ScaleTable.COLUMNS.size()];
        for (List<String> line : all) {
            for (int i = 0; i < width.length; i++) width[i] = Math.max(width[i], line.get(i).length());
        }
        StringBuilder sb = new StringBuilder();
        for (List<String> line : all) {
            for (int i = 0; i < width.length; i++) {
                if (i > 0) sb.append("  ");
                sb.append(line.get(i)).append(" ".repeat(width[i] - line.get(i).length()));
            }
            int end = sb.length();
            while (end > 0 && sb.charAt(end - 1) == ' ') end--;
            sb.setLength(end);
            sb.append('\n');
        }
        return sb.toString();
    }

    public static String csv(List<ScaleRow> rows) {
        StringBuilder sb = new StringBuilder(String.join(",", ScaleTable.COLUMNS)).append('\n');
        for (ScaleRow r : rows) {
            List<String> c = cells(r);
            for (int i = 0; i < c.size(); i++) {
                if (i > 0) sb.append(',');
                sb.append(csvCell(c.get(i)));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    static String csvCell(String s) {
        if (s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r")) {
            return "\"" + s.replace("\"", "\"\"") + "\"";
        }
        return s;
    }

    /** One JSON object per row (JSON lines), keys in schema order. */
    public static String json(List<ScaleRow> rows) {
        ObjectMapper m = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (ScaleRow r : rows) {
            Row row = ScaleTable.toRow(r);
            Map<String, Object> o = new LinkedHashMap<>();
            for (int i = 0; i < ScaleTable.COLUMNS.size(); i++) o.put(ScaleTable.COLUMNS.get(i), row.get(i));
            try {
                sb.append(m.writeValueAsString(o)).append('\n');
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
        return sb.toString();
    }
}
