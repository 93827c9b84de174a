package io.quantcal.job.config;

import static io.quantcal.job.config.QuantcalConfigTest.MINIMAL;
import static io.quantcal.job.config.QuantcalConfigTest.assertMessage;
import static io.quantcal.job.config.QuantcalConfigTest.parse;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class MemoryBudgetConfigTest {

    @Test
    void memoryBudgetIsAutoOrASize() {
        assertEquals(QuantcalConfig.AUTO_MEMORY_BUDGET, parse(MINIMAL).memoryBudget());
        assertEquals(768L << 20, parse(MINIMAL, "runtime.memory-budget=768m").memoryBudget());
        assertEquals(2L << 30, parse(MINIMAL, "runtime.memory-budget=2g").memoryBudget());
        assertEquals(1L << 20, parse(MINIMAL, "runtime.memory-budget=1048576").memoryBudget());
        assertEquals(QuantcalConfig.AUTO_MEMORY_BUDGET, parse(MINIMAL, "runtime.memory-budget=auto").memoryBudget());
        assertMessage(() -> parse(MINIMAL, "runtime.memory-budget=lots"),
                "quantcal.runtime.memory-budget: expected auto or a size such as 768m or 2g, got 'lots'");
        assertMessage(() -> parse(MINIMAL, "runtime.memory-budget=512k"),
                "quantcal.runtime.memory-budget: expected at least 1m (1 MiB), got '512k'");
    }
}
