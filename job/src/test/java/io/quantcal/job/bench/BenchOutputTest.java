package io.quantcal.job.bench;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchOutputTest {

    @Test
    void removesTheScratchTreeAndNothingALinkPointsTo(@TempDir Path elsewhere) throws Exception {
        Path outside = Files.writeString(elsewhere.resolve("keep.txt"), "not the benchmark's");
        Path out = BenchOutput.create("test");
        assertTrue(out.getFileName().toString().startsWith("quantcal-bench-test"));
        Files.writeString(Files.createDirectories(out.resolve("run/scale_table")).resolve("part-0.parquet"), "x");
        Files.createSymbolicLink(out.resolve("run/link"), outside);
        Files.createSymbolicLink(out.resolve("dirlink"), elsewhere);
        BenchOutput.remove(out);
        assertFalse(Files.exists(out, java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertTrue(Files.isRegularFile(outside), "a link's target stays");
        assertTrue(Files.isRegularFile(elsewhere.resolve("keep.txt")), "a linked directory's content stays");
        BenchOutput.remove(out); // gone already: nothing to do
    }
}
