package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * quantcal.calibration.parquet.inputs and quantcal.input-shapes: maps keyed by the model's input names, in the file
 * or as overrides (names with dots quoted), each value checked before Spark starts.
 */
class InputKeysTest {

    static QuantcalConfig parse(String body, String... overrides) {
        return QuantcalConfig.parse("test.conf", """
                quantcal {
                  model = "m.onnx"
                  calibration.path = "data/"
                  output.path = "out/"
                  %s
                }
                """.formatted(body), List.of(overrides));
    }

    @Test
    void emptyByDefault() {
        QuantcalConfig c = parse("");
        assertEquals(Map.of(), c.inputs().parquetColumns());
        assertEquals(Map.of(), c.inputs().shapes());
    }

    @Test
    void fromTheFileAndFromOverrides() {
        QuantcalConfig c = parse("""
                calibration.parquet.inputs { input_ids = ids, "input.1" = pixels }
                input-shapes { input_ids = [-1, 128] }
                """, "calibration.parquet.inputs.attention_mask=mask", "input-shapes.attention_mask=[-1,128]",
                "input-shapes.\"input.1\"=-1, 3, 224, 224");
        assertEquals(Map.of("input_ids", "ids", "input.1", "pixels", "attention_mask", "mask"), c.inputs().parquetColumns());
        assertEquals(Map.of("input_ids", List.of(-1L, 128L), "attention_mask", List.of(-1L, 128L),
                "input.1", List.of(-1L, 3L, 224L, 224L)), c.inputs().shapes());
    }

    @Test
    void wrongValuesAreNamedWithTheirKey() {
        String m = assertThrows(ConfigException.class, () -> parse("input-shapes { ids = [-1, 0] }")).getMessage();
        assertEquals("quantcal.input-shapes.ids: expected the input's full shape, batch first, as a list of integers"
                + " (-1 for a dimension that varies or is the model's, e.g. [-1, 128]), got [-1,0]", m);
        m = assertThrows(ConfigException.class, () -> parse("input-shapes { \"input.1\" = 128 }")).getMessage();
        assertEquals("quantcal.input-shapes.\"input.1\": expected the input's full shape, batch first, as a list of"
                + " integers (-1 for a dimension that varies or is the model's, e.g. [-1, 128]), got 128", m);
        m = assertThrows(ConfigException.class, () -> parse("calibration.parquet.inputs { ids = [a, b] }")).getMessage();
        assertEquals("quantcal.calibration.parquet.inputs.ids: expected the name of a Parquet column (model input ids"
                + " = column), got [\"a\",\"b\"]", m);
        m = assertThrows(ConfigException.class, () -> parse("", "input-shapes.ids=[-1, x]")).getMessage();
        assertEquals("quantcal.input-shapes.ids: expected a number, got 'x'", m);
    }

    @Test
    void inputValuesAreNumbersOrListsOfNumbers() {
        QuantcalConfig c = parse("input-values { sr = 16000 }", "input-values.gain=[0.5, 2]", "input-values.flag=1");
        assertEquals(Map.of("sr", List.of(16000.0), "gain", List.of(0.5, 2.0), "flag", List.of(1.0)), c.inputs().values());
        assertEquals(Map.of(), parse("").inputs().values());
        String m = assertThrows(ConfigException.class, () -> parse("input-values { sr = fast }")).getMessage();
        assertEquals("quantcal.input-values.sr: expected the value the input is always fed, a number (e.g. 16000 for a"
                + " sample rate) or a list of numbers in row-major order, got \"fast\"", m);
        m = assertThrows(ConfigException.class, () -> parse("input-values { sr = [] }")).getMessage();
        assertEquals("quantcal.input-values.sr: expected the value the input is always fed, a number (e.g. 16000 for a"
                + " sample rate) or a list of numbers in row-major order, got []", m);
        m = assertThrows(ConfigException.class, () -> parse("", "input-values.sr=x")).getMessage();
        assertEquals("quantcal.input-values.sr: expected a number, got 'x'", m);
    }
}
