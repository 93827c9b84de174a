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

    /** The whole content of the file at {@code location}. */
    byte[] read(String location) throws IOException;

    /**
     * Bytes {@code [offset, offset + length)} of the file at {@code location} ({@code length} −1: to its end): one
     * tensor's data, so that a model's data file may be larger than a Java array. This default reads the whole file;
     * the resolvers of files on disk and of the job's file systems read the range alone.
     */
    default byte[] read(String location, long offset, long length) throws IOException {
        byte[] file = read(location);
        return range(file.length, offset, length, (o, l) -> java.util.Arrays.copyOfRange(file, (int) o, (int) (o + l)));
    }

    /** Reads one range of a file of {@code fileLength} bytes. */
    @FunctionalInterface
    public interface RangeReader {
        byte[] read(long offset, int length) throws IOException;
    }

    /** Checks {@code [offset, offset + length)} against the file's length (−1: to its end), then reads it. */
    public static byte[] range(long fileLength, long offset, long length, RangeReader reader) throws IOException {
        if (length < 0) length = fileLength - offset;
        if (offset < 0 || length < 0 || offset + length > fileLength) {
            throw new java.io.EOFException("the file has " + fileLength + " bytes, but the tensor wants offset " + offset
                    + " length " + length);
        }
        if (length > Integer.MAX_VALUE - 8) {
            throw new IOException(String.format(java.util.Locale.ROOT, "one tensor of %,d bytes: a Java array stops at"
                    + " 2 GiB", length));
        }
        return reader.read(offset, (int) length);
    }

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
        return new ExternalDataResolver() {
            private Path file(String location) throws IOException {
                Path file = base.resolve(insideModelDirectory(location));
                Path real = file.toRealPath();
                if (!real.startsWith(base.toRealPath())) {
                    throw new IOException("external data location " + location + " leaves the model directory " + base
                            + " through a symbolic link (it is " + real + ")");
                }
                return real;
            }

            @Override
            public byte[] read(String location) throws IOException {
                return Files.readAllBytes(file(location));
            }

            @Override
            public byte[] read(String location, long offset, long length) throws IOException {
                try (java.nio.channels.FileChannel c = java.nio.channels.FileChannel.open(file(location))) {
                    return range(c.size(), offset, length, (o, l) -> {
                        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(l);
                        while (b.hasRemaining()) {
                            if (c.read(b, o + b.position()) < 0) throw new java.io.EOFException(location);
                        }
                        return b.array();
                    });
                }
            }
        };
    }
}
