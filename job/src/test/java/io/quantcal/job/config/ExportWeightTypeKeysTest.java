package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.job.pipeline.ExportPass;
import io.quantcal.kernels.onnx.QdqOptions;
import java.util.List;
import org.junit.jupiter.api.Test;

/** export.ort-weight-type, and the options of the exported model against those of the passes' partial models. */
class ExportWeightTypeKeysTest {

    static QuantcalConfig parse(String... overrides) {
        return QuantcalConfig.parse("test.conf", QuantcalConfigTest.MINIMAL, List.of(overrides));
    }

    @Test
    void theExportKeepsTheConfiguredContainerAndThePartialModelsAlwaysStoreUint8() {
        // ort, default int8: int32 bias, integer weights, shared pairs
        assertEquals(new QdqOptions(true, false, false, false), ExportPass.options(parse()));
        assertEquals(new QdqOptions(true, false, false, true), ExportPass.internalOptions(parse()));
        assertEquals(new QdqOptions(true, false, false, true), ExportPass.options(parse("export.ort-weight-type=uint8")));
        assertEquals(new QdqOptions(true, false, false, true),
                ExportPass.internalOptions(parse("export.ort-weight-type=uint8")));
        // tensorrt: float bias, weights as Q/DQ pairs, a pair per reader; the key is the ort profile's only
        QuantcalConfig trt = parse("export.profile=tensorrt", "export.ort-weight-type=uint8");
        assertEquals(QdqOptions.tensorRt(), ExportPass.options(trt));
        assertEquals(new QdqOptions(false, false, true, true), ExportPass.internalOptions(trt));
    }

    @Test
    void evaluateWarnsOfInt8WeightsExactlyWhereThisCpuSaturatesThem() {
        boolean saturates = io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates();
        String w = io.quantcal.job.pipeline.EvaluatePass.saturationWarning(parse());
        assertEquals(saturates, w != null, String.valueOf(w));
        if (w != null) org.junit.jupiter.api.Assertions.assertTrue(w.contains("export.ort-weight-type = uint8"), w);
        assertEquals(null, io.quantcal.job.pipeline.EvaluatePass.saturationWarning(parse("export.ort-weight-type=uint8")));
        assertEquals(null, io.quantcal.job.pipeline.EvaluatePass.saturationWarning(parse("quantization.weights.bits=7")));
        assertEquals(null, io.quantcal.job.pipeline.EvaluatePass.saturationWarning(parse("export.profile=tensorrt")));
    }

    @Test
    void anotherWeightTypeIsAConfigErrorNamingTheKey() {
        ConfigException e = assertThrows(ConfigException.class, () -> parse("export.ort-weight-type=int4"));
        assertEquals("quantcal.export.ort-weight-type: expected int8 or uint8, got int4", e.getMessage());
    }
}
