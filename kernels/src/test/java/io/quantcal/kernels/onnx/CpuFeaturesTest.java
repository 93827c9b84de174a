package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CpuFeaturesTest {

    @Test
    void avx2WithoutVnniSaturatesAndEitherVnniDoesNot() {
        assertTrue(CpuFeatures.saturatesWith(Set.of("sse4_2", "avx", "avx2", "fma")));                 // e.g. AMD EPYC (Zen 2/3)
        assertTrue(CpuFeatures.saturatesWith(Set.of("avx2", "avx512f", "avx512bw")));                   // Skylake-SP
        assertFalse(CpuFeatures.saturatesWith(Set.of("avx2", "avx512f", "avx512bw", "avx512_vnni"))); // Cascade Lake and later
        assertFalse(CpuFeatures.saturatesWith(Set.of("avx2", "avx_vnni")));                             // Alder Lake
        assertFalse(CpuFeatures.saturatesWith(Set.of("sse4_2")));                                      // no AVX2 kernels
        assertFalse(CpuFeatures.saturatesWith(Set.of()));                                              // unknown
    }

    @Test
    void flagsComeFromTheFirstProcessorOfCpuinfo(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("cpuinfo");
        Files.writeString(f, "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx2 fma\n\nprocessor\t: 1\n"
                + "flags\t\t: fpu\n");
        assertEquals(Set.of("fpu", "sse4_2", "avx2", "fma"), CpuFeatures.flags(f));
        assertEquals(Set.of(), CpuFeatures.flags(dir.resolve("missing")));
    }
}
