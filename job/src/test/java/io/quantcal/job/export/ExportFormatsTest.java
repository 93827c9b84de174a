package io.quantcal.job.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.table.ScaleRow;
import java.util.List;
import org.junit.jupiter.api.Test;

class ExportFormatsTest {

    static ScaleRow row(String tensor, String role, int channel, int bits, boolean signed, boolean symmetric,
                        double scale, int zp, int qmin, int qmax) {
        return new ScaleRow(1, "r", "m.onnx", "sha", tensor, "conv", "Conv", role, channel < 0 ? -1 : 0, channel,
                bits, signed, symmetric, scale, zp, qmin, qmax, (qmin - zp) * scale, (qmax - zp) * scale, "minmax",
                null, null, null);
    }

    @Test
    void tensorRtHexIsTheBigEndianFloat32BitPattern() {
        assertEquals("3c010204", TensorRtCache.hex(1.0 / 127));
        assertEquals("3f800000", TensorRtCache.hex(1.0));
        assertEquals("00000000", TensorRtCache.hex(0.0));
        assertEquals((float) (1.0 / 127), TensorRtCache.parse("3c010204"));
    }

    @Test
    void tensorRtCacheHasHeaderAndOneSymmetricScalePerActivation() {
        // uint8 affine range [-0.5, 2.0]: amax 2.0 → scale 2/127 whatever the zero point
        double s = 2.5 / 255;
        List<ScaleRow> rows = List.of(
                row("x", "activation", -1, 8, false, false, s, 51, 0, 255),
                row("w", "weight", -1, 8, true, true, 0.01, 0, -127, 127));
        String cache = TensorRtCache.write(rows, 8601);
        String[] lines = cache.split("\n");
        assertEquals(2, lines.length);
        assertEquals("TRT-8601-EntropyCalibration2", lines[0]);
        String[] kv = lines[1].split(": ");
        assertEquals("x", kv[0]);
        double amax = Math.max(Math.abs((0 - 51) * s), Math.abs((255 - 51) * s));
        assertEquals((float) (amax / 127), TensorRtCache.parse(kv[1]));
    }

    @Test
    void aimetOffsetsFollowTheOnnxZeroPoint() throws Exception {
        List<ScaleRow> rows = List.of(
                row("x", "activation", -1, 8, false, false, 0.02, 114, 0, 255),
                row("w", "weight", 0, 8, true, true, 0.5, 0, -127, 127),
                row("w", "weight", 1, 8, true, true, 0.25, 0, -127, 127));
        JsonNode j = new ObjectMapper().readTree(AimetEncodings.write(rows, "0.6.1", true));
        assertEquals("0.6.1", j.get("version").asText());
        JsonNode x = j.get("activation_encodings").get("x").get(0);
        assertEquals(-114, x.get("offset").asInt());
        assertEquals("False", x.get("is_symmetric").asText());
        assertEquals(8, x.get("bitwidth").asInt());
        assertEquals((float) (-114 * 0.02), (float) x.get("min").asDouble(), 1e-6);
        assertEquals((float) (141 * 0.02), (float) x.get("max").asDouble(), 1e-6);
        JsonNode w = j.get("param_encodings").get("w");
        assertEquals(2, w.size());
        assertEquals(-128, w.get(0).get("offset").asInt(), "symmetric int8 has offset -128");
        assertEquals("True", w.get(1).get("is_symmetric").asText());
        assertEquals(0.25, w.get(1).get("scale").asDouble());
        assertEquals(-32.0, w.get(1).get("min").asDouble());
        assertEquals(31.75, w.get(1).get("max").asDouble());
        assertEquals("True", j.get("quantizer_args").get("per_channel_quantization").asText());

        JsonNode v1 = new ObjectMapper().readTree(AimetEncodings.write(rows, "1.0.0", true));
        JsonNode p = v1.get("param_encodings").get(0);
        assertEquals("w", p.get("name").asText());
        assertEquals("PER_CHANNEL", p.get("enc_type").asText());
        assertTrue(p.get("is_sym").isBoolean());
        assertEquals(-128, p.get("offset").get(1).asInt());
        assertEquals("PER_TENSOR", v1.get("activation_encodings").get(0).get("enc_type").asText());
        assertEquals("INT", v1.get("activation_encodings").get(0).get("dtype").asText());
    }
}
