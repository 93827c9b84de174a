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
     * The ONNX rule for a location, on its text: a relative path that stays inside the model's directory after
     * {@code .} and {@code ..}. Returns it normalized ("a/./b" is "a/b"); an absolute path, a URI, a drive letter,
     * or one that climbs out is refused. Both resolvers (this module's and the job's, on any file system) apply it,
     * then check symbolic links where the file system has them.
     */
    static String insideModelDirectory(String location) throws IOException {
        if (location == null || location.isBlank()) throw new IOException("external data location is empty");
        String l = location.replace('\\', '/');
        if (l.startsWith("/") || l.matches("^[A-Za-z][A-Za-z0-9+.-]*:.*")) {
            throw new IOException("external data location " + location
                    + " is absolute; ONNX places external data relative to the model's directory");
        }
        java.util.ArrayDeque<String> parts = new java.util.ArrayDeque<>();
        for (String p : l.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..")) {
                if (parts.isEmpty()) {
                    throw new IOException("external data location " + location + " leaves the model directory");
                }
                parts.removeLast();
            } else {
                parts.addLast(p);
            }
        }
        if (parts.isEmpty()) throw new IOException("external data location " + location + " names the model directory itself");
        return String.join("/", parts);
    }

    /**
     * Files relative to {@code directory}, as the ONNX spec places them. A location that leaves the directory
     * (absolute, through "..", or through a symbolic link that points outside) is refused, as the ONNX checker does.
     */
    static ExternalDataResolver directory(Path directory) {
        Path base = directory.toAbsolutePath().normalize();
        return location -> {
            Path file = base.resolve(insideModelDirectory(location));
            Path real = file.toRealPath();
            if (!real.startsWith(base.toRealPath())) {
                throw new IOException("external data location " + location + " leaves the model directory " + base
                        + " through a symbolic link (it is " + real + ")");
            }
            return Files.readAllBytes(real);
        };
    }
}
