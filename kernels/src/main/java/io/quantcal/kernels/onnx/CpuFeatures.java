package io.quantcal.kernels.onnx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * What this machine's CPU means for ONNX Runtime's integer kernels. On x86 CPUs with AVX2 (or AVX-512) but without
 * VNNI, ONNX Runtime computes u8·s8 products with {@code vpmaddubsw}, which adds each pair of products in a saturating
 * int16: a uint8 activation near 255 times an int8 weight beyond ±64, twice, exceeds 32767 and is clamped, so a QDQ
 * model with int8 weights does not compute what its scale table says (ONNX Runtime's quantization documentation calls
 * this the saturation issue; its remedies are 7-bit weights or u8·u8). With VNNI ({@code vpdpbusd}) the products are
 * summed in int32, exactly. Read from {@code /proc/cpuinfo}; where that cannot be read (not Linux) nothing is assumed.
 */
public final class CpuFeatures {

    private CpuFeatures() {}

    private static volatile Boolean saturates;

    /** Whether ONNX Runtime's u8·s8 kernels saturate on this machine (x86 with AVX2, without AVX-512 VNNI or AVX-VNNI). */
    public static boolean u8s8Saturates() {
        Boolean s = saturates;
        if (s == null) {
            String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
            boolean x86 = arch.equals("amd64") || arch.equals("x86_64");
            s = x86 && saturatesWith(flags(Path.of("/proc/cpuinfo")));
            saturates = s;
        }
        return s;
    }

    /** The rule on one CPU's flags (as /proc/cpuinfo lists them): AVX2 without a VNNI extension saturates. */
    static boolean saturatesWith(Set<String> flags) {
        return flags.contains("avx2") && !flags.contains("avx512_vnni") && !flags.contains("avx_vnni");
    }

    /** The first processor's flags in a /proc/cpuinfo file; empty when it cannot be read. */
    static Set<String> flags(Path cpuinfo) {
        try {
            for (String line : Files.readAllLines(cpuinfo)) {
                if (line.startsWith("flags")) {
                    int colon = line.indexOf(':');
                    return Set.of(line.substring(colon + 1).trim().split("\\s+"));
                }
            }
        } catch (IOException | RuntimeException e) {
            return Set.of();
        }
        return Set.of();
    }
}
