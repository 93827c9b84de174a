package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** quantcal.evaluation.after-each-method: on by default (today's behaviour), off by key, a bad value names the key. */
class EvaluateConfigKeysTest {

    @Test
    void afterEachMethodIsOnByDefaultAndCanBeSwitchedOff() {
        assertTrue(QuantcalConfig.parse("test.conf", QuantcalConfigTest.MINIMAL, List.of()).evaluateAfterEachMethod());
        assertFalse(QuantcalConfig.parse("test.conf", QuantcalConfigTest.MINIMAL,
                List.of("evaluation.after-each-method=false")).evaluateAfterEachMethod());
        String file = QuantcalConfigTest.MINIMAL.replace("output.path = \"out/\"",
                "output.path = \"out/\"\n  evaluation.after-each-method = off");
        assertFalse(QuantcalConfig.parse("test.conf", file, List.of()).evaluateAfterEachMethod());
    }

    @Test
    void aBadValueNamesTheKey() {
        // as an override and in the file: either way before Spark starts, naming the key in full
        ConfigException o = assertThrows(ConfigException.class, () -> QuantcalConfig.parse("test.conf",
                QuantcalConfigTest.MINIMAL, List.of("evaluation.after-each-method=sometimes")));
        assertTrue(o.getMessage().contains("quantcal.evaluation.after-each-method") && o.getMessage().contains("sometimes"),
                o.getMessage());
        String file = QuantcalConfigTest.MINIMAL.replace("output.path = \"out/\"",
                "output.path = \"out/\"\n  evaluation.after-each-method = sometimes");
        ConfigException f = assertThrows(ConfigException.class, () -> QuantcalConfig.parse("test.conf", file, List.of()));
        assertTrue(f.getMessage().contains("quantcal.evaluation.after-each-method") && f.getMessage().contains("sometimes"),
                f.getMessage());
        ConfigException typo = assertThrows(ConfigException.class, () -> QuantcalConfig.parse("test.conf",
                QuantcalConfigTest.MINIMAL, List.of("evaluation.after-each-methods=false")));
        assertTrue(typo.getMessage().contains("quantcal.evaluation.after-each-methods"), typo.getMessage());
    }
}
