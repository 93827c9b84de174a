package io.quantcal.job.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** quantcal.learn: the documented defaults, and a bad value or pass order is an error naming its key. */
class LearnConfigKeysTest {

    static QuantcalConfig parse(String... overrides) {
        return QuantcalConfig.parse("test.conf", QuantcalConfigTest.MINIMAL, List.of(overrides));
    }

    @Test
    void defaults() {
        QuantcalConfig.Learn l = parse().learn();
        assertEquals(new QuantcalConfig.Learn("lsq", 64, "quantized", 2000, 1e-2, false, 1e-4, 2048, true, 0L, true, "nearest"), l);
        assertTrue(l.quantizedInputs());
        assertEquals("qil", parse("learn.method=qil").learn().method());
        QuantcalConfig c = parse("pipeline=[calibrate,learn,export]", "learn.update-weights=true", "learn.inputs=fp");
        assertEquals(List.of("calibrate", "learn", "export"), c.pipeline());
        assertTrue(c.learn().updateWeights());
        assertTrue(!c.learn().quantizedInputs());
    }

    @Test
    void badValuesNameTheirKey() {
        for (String[] c : new String[][] {{"learn.method=lsqq", "quantcal.learn.method"},
                {"learn.samples=0", "quantcal.learn.samples"},
                {"learn.iterations=0", "quantcal.learn.iterations"},
                {"learn.learning-rate=0", "quantcal.learn.learning-rate"},
                {"learn.weight-learning-rate=-1", "quantcal.learn.weight-learning-rate"},
                {"learn.batch-columns=0", "quantcal.learn.batch-columns"},
                {"learn.inputs=quantised", "quantcal.learn.inputs"},
                {"learn.update-weights=maybe", "quantcal.learn.update-weights"},
                {"learn.rounding=stochastic", "quantcal.learn.rounding"},
                {"learn.bogus=1", "quantcal.learn.bogus"}}) {
            ConfigException e = assertThrows(ConfigException.class, () -> parse(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }

    @Test
    void adaroundRoundingGoesWithLsqOnly() {
        QuantcalConfig c = parse("pipeline=[calibrate,learn,export]", "learn.rounding=adaround");
        assertTrue(c.learn().adaroundRounding());
        assertEquals("lsq+adaround", c.learn().rowMethod());
        assertEquals("qil", parse("learn.method=qil").learn().rowMethod());
        for (String[] bad : new String[][] {{"learn.method=qil", "needs quantcal.learn.method = lsq, got qil"},
                {"learn.update-weights=true", "quantcal.learn.update-weights = true"}}) {
            ConfigException e = assertThrows(ConfigException.class, () -> parse("pipeline=[calibrate,learn,export]",
                    "learn.rounding=adaround", bad[0]), bad[0]);
            assertTrue(e.getMessage().contains("quantcal.learn.rounding") && e.getMessage().contains(bad[1]), e.getMessage());
        }
    }

    @Test
    void passOrder() {
        for (String[] c : new String[][] {{"pipeline=[learn,calibrate,export]", "learn needs calibrate before it"},
                {"pipeline=[calibrate,export,learn]", "learn must come before export"},
                {"pipeline=[calibrate,evaluate,learn,export]", "learn must come before evaluate"},
                {"pipeline=[calibrate,bias-correct,learn]", "learn must come before bias-correct"},
                {"pipeline=[calibrate,adaround,learn,export]", "adaround and learn both choose the integer weights"}}) {
            ConfigException e = assertThrows(ConfigException.class, () -> parse(c[0]), c[0]);
            assertTrue(e.getMessage().contains("quantcal.pipeline") && e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
