package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.job.config.ConfigException;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.pipeline.PassRegistry.Capability;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The registry is the list of known passes, and every order rule follows from what its passes need and provide. */
class PassRegistryTest {

    static final String MINIMAL = """
            quantcal {
              model = "m.onnx"
              calibration.path = "images/"
              output.path = "out/"
            }
            """;

    /** The error of a pipeline, read as a config with that pipeline (no Spark anywhere on this path). */
    static String error(String pipeline) {
        ConfigException e = assertThrows(ConfigException.class,
                () -> QuantcalConfig.parse("test.conf", MINIMAL, List.of("pipeline=" + pipeline)), pipeline);
        assertTrue(e.getMessage().startsWith("quantcal.pipeline"), e.getMessage());
        return e.getMessage();
    }

    static void ok(String pipeline) {
        QuantcalConfig.parse("test.conf", MINIMAL, List.of("pipeline=" + pipeline));
    }

    @Test
    void theRegistryIsTheListOfKnownPassesAndMakesEach() {
        assertEquals(List.of("fold-bn", "equalize", "calibrate", "easyquant", "adaround", "learn", "bias-correct", "export", "evaluate"),
                PassRegistry.names());
        assertEquals(PassRegistry.names(), QuantcalConfig.KNOWN_PASSES);
        for (String name : PassRegistry.names()) assertEquals(name, PassRegistry.create(name).name());
        assertEquals("quantcal.pipeline: unknown pass 'quantize', expected one of " + PassRegistry.names(),
                error("[calibrate, quantize]"));
        assertEquals("quantcal.pipeline [calibrate, export, calibrate]: pass calibrate appears twice; each pass runs at most once",
                error("[calibrate, export, calibrate]"));
    }

    @Test
    void aPassThatNeedsCalibratedScalesNeedsCalibrateBeforeIt() {
        for (String p : List.of("easyquant", "adaround", "bias-correct", "export", "evaluate")) {
            String expected = p + " needs calibrate before it (" + p + " starts from calibrated scales, which calibrate provides)";
            assertEquals("quantcal.pipeline [fold-bn, " + p + ", calibrate]: " + expected, error("[fold-bn, " + p + ", calibrate]"));
            assertEquals("quantcal.pipeline [" + p + "]: " + expected, error("[" + p + "]"));
        }
    }

    @Test
    void aPassThatChangesWhatAnotherUsesComesBeforeIt() {
        String[][] cases = {
                {"[calibrate, fold-bn]", "fold-bn must come before calibrate (calibrate uses the BatchNorm-folded model, which fold-bn provides)"},
                {"[calibrate, equalize]", "equalize must come before calibrate (calibrate uses the equalized model, which equalize provides)"},
                {"[equalize, fold-bn, calibrate]", "fold-bn must come before equalize (equalize uses the BatchNorm-folded model, which fold-bn provides)"},
                {"[calibrate, adaround, easyquant]", "easyquant must come before adaround (adaround uses searched scales, which easyquant provides)"},
                {"[calibrate, bias-correct, easyquant]", "easyquant must come before bias-correct (bias-correct uses searched scales, which easyquant provides)"},
                {"[calibrate, bias-correct, adaround]", "adaround must come before bias-correct (bias-correct uses integer weights, which adaround provides)"},
                {"[calibrate, export, easyquant]", "easyquant must come before export (export uses searched scales, which easyquant provides)"},
                {"[calibrate, export, adaround]", "adaround must come before export (export uses integer weights, which adaround provides)"},
                {"[calibrate, export, bias-correct]", "bias-correct must come before export (export uses corrected biases, which bias-correct provides)"},
                {"[calibrate, evaluate, easyquant]", "easyquant must come before evaluate (evaluate uses searched scales, which easyquant provides)"},
                {"[calibrate, evaluate, adaround]", "adaround must come before evaluate (evaluate uses integer weights, which adaround provides)"},
                {"[calibrate, evaluate, bias-correct]", "bias-correct must come before evaluate (evaluate uses corrected biases, which bias-correct provides)"}};
        for (String[] c : cases) {
            assertEquals("quantcal.pipeline " + c[0] + ": " + c[1], error(c[0]));
        }
    }

    @Test
    void pipelinesInAWorkingOrderAreAccepted() {
        ok("[fold-bn, equalize, calibrate, easyquant, adaround, bias-correct, export, evaluate]");
        ok("[fold-bn, calibrate, evaluate, export]");
        ok("[calibrate]");
        ok("[fold-bn]");
        ok("[]");
    }

    /** The learn pass is one registry entry; its rules follow from the declarations. */
    @Test
    void learnIsOneDeclaration() {
        PassRegistry.checkOrder(List.of("fold-bn", "calibrate", "learn", "export", "evaluate"));
        PassRegistry.checkOrder(List.of("calibrate", "easyquant", "learn", "bias-correct", "export"));
        assertEquals("quantcal.pipeline [learn, calibrate]: learn needs calibrate before it (learn starts from calibrated"
                + " scales, which calibrate provides)", assertThrows(ConfigException.class,
                () -> PassRegistry.checkOrder(List.of("learn", "calibrate"))).getMessage());
        assertEquals("quantcal.pipeline [calibrate, export, learn]: learn must come before export (export uses searched"
                + " scales, which learn provides)", assertThrows(ConfigException.class,
                () -> PassRegistry.checkOrder(List.of("calibrate", "export", "learn"))).getMessage());
        assertEquals("quantcal.pipeline [calibrate, learn, easyquant]: easyquant must come before learn (learn uses"
                + " searched scales, which easyquant provides)", assertThrows(ConfigException.class,
                () -> PassRegistry.checkOrder(List.of("calibrate", "learn", "easyquant"))).getMessage());
        assertEquals("quantcal.pipeline [calibrate, adaround, learn]: adaround and learn both choose the integer weights"
                + " of every layer (integer weights); use one of them", assertThrows(ConfigException.class,
                () -> PassRegistry.checkOrder(List.of("calibrate", "adaround", "learn"))).getMessage());
    }

    /**
     * Bias correction reads calibrate's E[x] only when no pass between them rewrites the FP network: the search passes
     * leave it as it is, the DFQ rewrites do not.
     */
    @Test
    void fpNetworkChangeBetweenNamesTheFirstRewritingPass() {
        assertEquals(java.util.Optional.empty(), PassRegistry.fpNetworkChangeBetween(
                List.of("fold-bn", "equalize", "calibrate", "easyquant", "adaround", "bias-correct", "export"),
                "calibrate", "bias-correct"));
        assertEquals(java.util.Optional.empty(), PassRegistry.fpNetworkChangeBetween(
                List.of("calibrate", "learn", "bias-correct"), "calibrate", "bias-correct"));
        // unchecked orders: the rewriting passes are found wherever they stand, the first one named
        assertEquals(java.util.Optional.of("equalize"), PassRegistry.fpNetworkChangeBetween(
                List.of("calibrate", "easyquant", "equalize", "fold-bn", "bias-correct"), "calibrate", "bias-correct"));
        assertEquals(java.util.Optional.of("fold-bn"), PassRegistry.fpNetworkChangeBetween(
                List.of("calibrate", "fold-bn", "bias-correct"), "calibrate", "bias-correct"));
        // a pass outside the span does not count; neither does a missing end or a reversed pair
        assertEquals(java.util.Optional.empty(), PassRegistry.fpNetworkChangeBetween(
                List.of("equalize", "calibrate", "bias-correct", "fold-bn"), "calibrate", "bias-correct"));
        assertEquals(java.util.Optional.empty(), PassRegistry.fpNetworkChangeBetween(
                List.of("calibrate", "equalize"), "calibrate", "bias-correct"));
        assertEquals(java.util.Optional.empty(), PassRegistry.fpNetworkChangeBetween(
                List.of("bias-correct", "equalize", "calibrate"), "calibrate", "bias-correct"));
    }
}
