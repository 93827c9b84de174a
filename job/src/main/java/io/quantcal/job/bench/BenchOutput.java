package io.quantcal.job.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A benchmark's scratch directory under the system's temporary directory: its runs' outputs go there, and it is
 * removed when the benchmark ends (unless the user asked to keep it), so repeated benchmarks leave nothing behind.
 */
final class BenchOutput {

    private BenchOutput() {}

    static Path create(String name) throws IOException {
        return Files.createTempDirectory("quantcal-bench-" + name);
    }

    /** Removes {@code dir} and everything under it (symbolic links themselves, never their targets). */
    static void remove(Path dir) {
        if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> all = Files.walk(dir)) {
            List<Path> paths = all.sorted(Comparator.reverseOrder()).toList();
            for (Path p : paths) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the benchmark's scratch directory " + dir, e);
        }
    }
}
