package io.quantcal.kernels.onnx;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the external data file an initializer points to ({@code location} in its external_data
 * entries, a path relative to the model's directory). The job passes one that reads through Hadoop
 * file systems, so that the kernels never choose how files are read.
 */
@FunctionalInterface
public interface ExternalDataResolver {

    /** The whole content of the file at {@code location}; offsets are applied by the caller. */
    byte[] read(String location) throws IOException;

    /** For models known to be self-contained: any external reference is an error. */
    static ExternalDataResolver none() {
        return location -> {
            throw new FileNotFoundException(location + " (no external data resolver was given)");
        };
    }

    /**
     * Files relative to {@code directory}, as the ONNX spec places them. A location that leaves the
     * directory (absolute, or through "..") is refused, as the ONNX checker does.
     */
    static ExternalDataResolver directory(Path directory) {
        Path base = directory.toAbsolutePath().normalize();
        return location -> {
            Path file = base.resolve(location).normalize();
            if (!file.startsWith(base)) {
                throw new IOException("external data location " + location + " leaves the model directory " + base);
            }
            return Files.readAllBytes(file);
        };
    }
}
