package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** quantcal.adaround: the documented defaults, and a bad value is an error naming its key. */
class AdaRoundConfigKeysTest {

    static QuantcalConfig parse(String... overrides) {
        return QuantcalConfig.parse("test.conf", QuantcalConfigTest.MINIMAL, List.of(overrides));
    }

    @Test
    void defaults() {
        QuantcalConfig.AdaRound a = parse().adaround();
        assertEquals(new QuantcalConfig.AdaRound(64, 2000, 1e-2, 0.01, 2048, true, true, 0L, "quantized"), a);
        assertTrue(a.quantizedInputs());
        assertTrue(!parse("adaround.inputs=fp").adaround().quantizedInputs());
        assertTrue(parse("pipeline=[fold-bn,calibrate,adaround,export]").pipeline().contains("adaround"));
    }

    @Test
    void badValuesNameTheirKey() {
        for (String[] c : new String[][] {{"adaround.samples=0", "quantcal.adaround.samples"},
                {"adaround.iterations=-1", "quantcal.adaround.iterations"},
                {"adaround.learning-rate=0", "quantcal.adaround.learning-rate"},
                {"adaround.lambda=-1", "quantcal.adaround.lambda"},
                {"adaround.batch-columns=0", "quantcal.adaround.batch-columns"},
                {"adaround.inputs=quantised", "quantcal.adaround.inputs"},
                {"adaround.bogus=1", "quantcal.adaround.bogus"}}) {
            ConfigException e = assertThrows(ConfigException.class, () -> parse(c[0]));
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
