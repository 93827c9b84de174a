package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class QuantcalConfigTest {

    static final String MINIMAL = """
            quantcal {
              model = "m.onnx"
              calibration.path = "images/"
              output.path = "out/"
            }
            """;

    static QuantcalConfig parse(String text, String... overrides) {
        return QuantcalConfig.parse("test.conf", text, List.of(overrides));
    }

    @Test
    void defaultsComeFromReferenceConf() {
        QuantcalConfig c = parse(MINIMAL);
        assertEquals("m.onnx", c.model());
        assertEquals(List.of("fold-bn", "calibrate", "export", "evaluate"), c.pipeline());
        assertEquals("empirical", c.dfq().biasCorrection());
        assertEquals(8, c.weights().bits());
        assertTrue(c.weights().perChannel());
        assertTrue(c.weights().symmetric());
        assertEquals("minmax", c.activations().calibrator());
        assertFalse(c.activations().symmetric());
        assertEquals(512, c.calibration().limit());
        assertEquals("images/", c.evaluation().path(), "evaluation defaults to the calibration data");
        assertArrayEquals(new long[] {4, 1, 28, 28}, c.preprocess().shape(4));
        assertEquals(8601, c.export().tensorRtVersion());
        assertFalse(c.overwrite());
    }

    @Test
    void overridesWinAndMayOmitTheRootKey() {
        QuantcalConfig c = parse(MINIMAL, "quantization.weights.bits=4", "quantcal.quantization.activations.calibrator=entropy",
                "pipeline=[fold-bn, calibrate]", "calibration.preprocess.mean=[0.5]");
        assertEquals(4, c.weights().bits());
        assertEquals("entropy", c.activations().calibrator());
        assertEquals(List.of("fold-bn", "calibrate"), c.pipeline());
        assertArrayEquals(new double[] {0.5}, c.preprocess().mean());
    }

    @Test
    void unknownKeyIsNamed() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> parse(MINIMAL, "quantization.weigths.bits=4"));
        assertTrue(e.getMessage().contains("quantcal.quantization.weigths.bits"), e.getMessage());
    }

    @Test
    void wrongTypeIsNamed() {
        ConfigException e = assertThrows(ConfigException.class, () -> parse(MINIMAL, "quantization.weights.bits=eight"));
        assertTrue(e.getMessage().contains("quantization.weights.bits"), e.getMessage());
    }

    @Test
    void outOfRangeValuesAreNamedWithWhatWasExpected() {
        assertMessage(() -> parse(MINIMAL, "quantization.weights.bits=17"), "quantcal.quantization.weights.bits: expected 2..16, got 17");
        assertMessage(() -> parse(MINIMAL, "quantization.activations.calibrator=kl"), "quantcal.quantization.activations.calibrator");
        assertMessage(() -> parse(MINIMAL, "pipeline=[calibrate, quantize]"), "unknown pass 'quantize'");
        assertMessage(() -> parse(MINIMAL, "quantization.weights.granularity=per-row"), "per-tensor or per-channel");
        assertMessage(() -> parse(MINIMAL, "calibration.preprocess.std=[0]"), "quantcal.calibration.preprocess.std");
        assertMessage(() -> parse(MINIMAL, "calibration.preprocess.mean=[1,2]"), "expected 1 or 1 values");
        assertMessage(() -> parse(MINIMAL, "calibration.limit=-1"), "quantcal.calibration.limit");
        assertMessage(() -> parse("quantcal.output.path=x\nquantcal.calibration.path=y"), "quantcal.model");
        assertMessage(() -> parse(MINIMAL, "export.aimet-version=2"), "quantcal.export.aimet-version");
        assertMessage(() -> parse(MINIMAL, "nonsense"), "expected key=value");
        assertMessage(() -> parse(MINIMAL, "runtime.kernel-threads=-1"), "quantcal.runtime.kernel-threads: expected an integer >= 0, got -1");
        assertMessage(() -> parse("quantcal { model = "), "cannot parse config test.conf");
    }

    @Test
    void sparkConfIsFreeForm() {
        QuantcalConfig c = parse(MINIMAL, "spark.conf.\"spark.sql.shuffle.partitions\"=3");
        assertEquals("3", c.sparkConf().get("spark.sql.shuffle.partitions"));
    }

    static void assertMessage(org.junit.jupiter.api.function.Executable e, String expected) {
        ConfigException ex = assertThrows(ConfigException.class, e);
        assertTrue(ex.getMessage().contains(expected), "'" + ex.getMessage() + "' should contain '" + expected + "'");
    }

    @Test
    void overridesAreValuesNotHoconFragments() {
        // a root ending in '/' (as a DAG builds it), comments, quotes, URIs, '$', newlines arrive unchanged
        for (String v : List.of("root//20260101", "keep#2", "a \"quoted\" name", "hdfs://nn:8020/q/out",
                "s3a://bucket/a b/c", "file:///tmp/x", "${HOME}/out", "two\nlines", "x = y, z: w")) {
            QuantcalConfig c = parse(MINIMAL, "output.path=" + v, "spark.app-name=" + v);
            assertEquals(v, c.outputPath());
            assertEquals(v, c.appName());
        }
        // a newline cannot inject a second key
        QuantcalConfig c = parse(MINIMAL, "output.path=out\nquantcal.output.overwrite=true");
        assertFalse(c.overwrite());
        assertEquals("out\nquantcal.output.overwrite=true", c.outputPath());
        // numbers, booleans and lists where the key's type says so
        c = parse(MINIMAL, "quantization.weights.bits= 4 ", "output.overwrite=true", "calibration.preprocess.mean=0.5",
                "pipeline=[fold-bn,calibrate]", "easyquant.layers=[\"conv,1\", b]", "easyquant.alpha=0.25");
        assertEquals(4, c.weights().bits());
        assertTrue(c.overwrite());
        assertArrayEquals(new double[] {0.5}, c.preprocess().mean());
        assertEquals(List.of("fold-bn", "calibrate"), c.pipeline());
        assertEquals(List.of("conv,1", "b"), c.easyquant().layers());
        assertEquals(0.25, c.easyquant().alpha());
        assertEquals("x//y#z", parse(MINIMAL, "spark.conf.\"spark.app.tag\"=x//y#z").sparkConf().get("spark.app.tag"));
        assertMessage(() -> parse(MINIMAL, "output.overwrite=maybe"), "quantcal.output.overwrite: expected true or false, got 'maybe'");
        assertMessage(() -> parse(MINIMAL, "quantization.weights.bits=4 // four"),
                "quantcal.quantization.weights.bits: expected a number, got '4 // four'");
        assertMessage(() -> parse(MINIMAL, "calibration.preprocess.mean=[0.5, x]"),
                "quantcal.calibration.preprocess.mean: expected a number, got 'x'");
        assertMessage(() -> parse(MINIMAL, "output=x"), "quantcal.output is a section, not a value");
        assertMessage(() -> parse(MINIMAL, "run-id=a/b"), "quantcal.run-id: expected letters, digits");
        assertMessage(() -> parse(MINIMAL, "outptu.path=x"), "unknown config key quantcal.outptu.path");
    }

    @Test
    void keysOutsideTheRootAndAMisspeltRootAreErrors() {
        assertMessage(() -> parse(MINIMAL + "quantcl.quantization.weights.bits = 4\n"),
                "config key quantcl.quantization.weights.bits is outside the quantcal { } block (is 'quantcl' a misspelling of 'quantcal'?)");
        assertMessage(() -> parse(MINIMAL + "output.path = elsewhere\n"), "config key output.path is outside the quantcal { } block");
    }

    @Test
    void passOrderIsCheckedBeforeSparkStarts() {
        assertMessage(() -> parse(MINIMAL, "pipeline=[calibrate, fold-bn, export, evaluate]"),
                "quantcal.pipeline [calibrate, fold-bn, export, evaluate]: fold-bn must come before calibrate (calibrate uses"
                        + " the BatchNorm-folded model, which fold-bn provides)");
        assertMessage(() -> parse(MINIMAL, "pipeline=[fold-bn, calibrate, export, adaround]"),
                "adaround must come before export");
        assertMessage(() -> parse(MINIMAL, "pipeline=[fold-bn, calibrate, bias-correct, adaround]"),
                "adaround must come before bias-correct");
        assertMessage(() -> parse(MINIMAL, "pipeline=[fold-bn, easyquant, calibrate]"), "easyquant needs calibrate before it");
        assertMessage(() -> parse(MINIMAL, "pipeline=[export]"), "export needs calibrate before it");
        assertMessage(() -> parse(MINIMAL, "pipeline=[calibrate, calibrate]"), "pass calibrate appears twice");
        assertMessage(() -> parse(MINIMAL, "pipeline=[calibrate, equalize]"), "equalize must come before calibrate");
        parse(MINIMAL, "pipeline=[fold-bn, equalize, calibrate, easyquant, adaround, bias-correct, export, evaluate]");
        parse(MINIMAL, "pipeline=[]");
    }
}
