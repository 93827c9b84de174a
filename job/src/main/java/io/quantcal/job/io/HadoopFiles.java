package io.quantcal.job.io;

import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** File access on any Hadoop file system (file:, hdfs:, s3a: ...), with errors that name the path. */
public final class HadoopFiles {

    private final Configuration conf;

    public HadoopFiles(Configuration conf) {
        this.conf = conf;
    }

    public FileSystem fs(Path p) {
        try {
            return p.getFileSystem(conf);
        } catch (IOException e) {
            throw new UncheckedIOException("no file system for " + p + ": " + e.getMessage(), e);
        }
    }

    /** A path made absolute against the file system's working directory (plain local paths stay local). */
    public Path qualify(String path) {
        Path p = new Path(path);
        return fs(p).makeQualified(p);
    }

    public byte[] readBytes(String path) {
        Path p = new Path(path);
        try (InputStream in = fs(p).open(p)) {
            long length = fs(p).getFileStatus(p).getLen();
            if (length > Integer.MAX_VALUE - 8) {
                throw new IOException(String.format(java.util.Locale.ROOT, "%,d bytes: quantcal reads this file whole,"
                        + " and a Java array stops at 2 GiB", length));
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        } catch (FileNotFoundException e) {
            throw new UncheckedIOException("file not found: " + path, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
        }
    }

    public String readText(String path) {
        return new String(readBytes(path), StandardCharsets.UTF_8);
    }

    public boolean exists(String path) {
        Path p = new Path(path);
        try {
            return fs(p).exists(p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot check " + path + ": " + e.getMessage(), e);
        }
    }

    public boolean isDirectory(String path) {
        Path p = new Path(path);
        try {
            return fs(p).getFileStatus(p).isDirectory();
        } catch (FileNotFoundException e) {
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot check " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * All files below {@code dir} (recursively), as qualified path strings, sorted.
     *
     * <p>A walk with {@code listStatus}, not {@code FileSystem.listFiles}: the latter makes a LocatedFileStatus of every
     * file, which asks for its permission and owner, and the local file system without Hadoop's native library answers
     * that by running {@code ls -ld} once per file (25 s for the 1000 example images on a loaded 2-core machine,
     * against 0.2 s for the walk).
     */
    public List<String> listFilesRecursively(String dir) {
        Path p = new Path(dir);
        List<String> out = new ArrayList<>();
        try {
            FileSystem fs = fs(p);
            java.util.ArrayDeque<Path> todo = new java.util.ArrayDeque<>(List.of(p));
            while (!todo.isEmpty()) {
                for (FileStatus st : fs.listStatus(todo.pop())) {
                    if (st.isDirectory()) todo.push(st.getPath());
                    else if (st.isFile()) out.add(st.getPath().toString());
                }
            }
        } catch (FileNotFoundException e) {
            throw new UncheckedIOException("directory not found: " + dir, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
        }
        out.sort(null);
        return out;
    }

    public void writeBytes(String path, byte[] bytes) {
        write(path, out -> out.write(bytes));
    }

    /**
     * Bytes {@code [offset, offset + length)} of a file ({@code length} −1: to its end), read alone: one tensor of an
     * external data file that may be larger than a Java array.
     */
    public byte[] readRange(String path, long offset, long length) throws IOException {
        Path p = new Path(path);
        FileSystem fs = fs(p);
        return io.quantcal.kernels.onnx.ExternalDataResolver.range(fs.getFileStatus(p).getLen(), offset, length, (o, l) -> {
            byte[] b = new byte[l];
            try (org.apache.hadoop.fs.FSDataInputStream in = fs.open(p)) {
                in.readFully(o, b);
            }
            return b;
        });
    }

    /**
     * Writes an ONNX model to {@code path}: one file, or for a model larger than one protobuf message
     * ({@link io.quantcal.kernels.onnx.OnnxModel#large}) the model and its external data file {@code <name>.data}
     * beside it (written first). Returns the data file's path, or null.
     */
    public String writeModel(String path, io.quantcal.kernels.onnx.OnnxModel model) {
        if (!model.large()) {
            // streamed: a model of up to 2 GiB is not copied into one array first
            write(path, model::writeTo);
            return null;
        }
        String dataPath = path + ".data";
        var w = model.withExternalData(fileName(dataPath));
        write(dataPath, w::writeData);
        writeBytes(path, w.model());
        return dataPath;
    }

    private interface Writer {
        void writeTo(OutputStream out) throws IOException;
    }

    /** Creates {@code path} (replacing it) and lets {@code writer} fill it through a buffer. */
    private void write(String path, Writer writer) {
        Path p = new Path(path);
        FileSystem fs = fs(p);
        // no .crc sidecar beside a file the user will see (the local file system's checksums protect nothing here)
        if (fs instanceof org.apache.hadoop.fs.LocalFileSystem l) fs = l.getRawFileSystem();
        try (OutputStream out = new java.io.BufferedOutputStream(fs.create(p, true), 1 << 20)) {
            writer.writeTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        }
    }

    public void writeText(String path, String text) {
        writeBytes(path, text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Creates {@code path} and its missing parents. A failure names the path and why: the nearest existing
     * ancestor is a regular file, or it is not writable, or the file system's own reason.
     */
    public void mkdirs(String path) {
        Path p = new Path(path);
        FileSystem fs = fs(p);
        try {
            Path existing = p;
            while (existing != null && !fs.exists(existing)) existing = existing.getParent();
            if (existing != null) {
                FileStatus st = fs.getFileStatus(existing);
                if (!st.isDirectory()) {
                    throw new IOException(existing + " is a regular file, not a directory");
                }
                if (!existing.equals(p)) requireWritable(fs, existing);
            }
            if (!fs.mkdirs(p)) throw new IOException("the file system refused (mkdirs returned false) with no reason");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + path + ": " + cause(e), e);
        }
    }

    /** Fails, naming the directory and its permissions, unless this user may create entries in {@code dir}. */
    public void requireWritable(String dir) {
        Path p = new Path(dir);
        try {
            requireWritable(fs(p), p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write in " + dir + ": " + cause(e), e);
        }
    }

    private static void requireWritable(FileSystem fs, Path dir) throws IOException {
        try {
            fs.access(dir, org.apache.hadoop.fs.permission.FsAction.WRITE_EXECUTE);
        } catch (org.apache.hadoop.security.AccessControlException e) {
            FileStatus st = fs.getFileStatus(dir);
            throw new java.nio.file.AccessDeniedException(dir.toString(), null, "permission denied: " + dir
                    + " is not writable (owner " + st.getOwner() + ", mode " + st.getPermission() + ")");
        } catch (UnsupportedOperationException e) {
            // no permission model on this file system: the write itself will tell
        }
    }

    /** The reason of a file system error in words: permission, missing file, not a directory, or its message. */
    public static String cause(Throwable e) {
        if (e instanceof java.nio.file.AccessDeniedException a && a.getReason() != null) return a.getReason();
        if (e instanceof org.apache.hadoop.security.AccessControlException
                || e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied (" + e.getMessage() + ")";
        }
        if (e instanceof FileNotFoundException || e instanceof java.nio.file.NoSuchFileException) {
            return "no such file or directory (" + e.getMessage() + ")";
        }
        if (e instanceof org.apache.hadoop.fs.ParentNotDirectoryException
                || e instanceof java.nio.file.NotDirectoryException) {
            return "a parent is not a directory (" + e.getMessage() + ")";
        }
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    /** Deletes {@code path} (recursively); fails, naming what was left, if the file system did not delete it all. */
    public void delete(String path) {
        Path p = new Path(path);
        FileSystem fs = fs(p);
        try {
            fs.delete(p, true);
            // a recursive delete can stop halfway and still return: what is left decides
            if (fs.exists(p)) throw new IOException("it is still there after deleting (partly deleted)");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + path + ": " + cause(e), e);
        }
    }

    /**
     * Renames {@code from} to {@code to}, which must not exist (Hadoop's rename would move {@code from} into an
     * existing directory instead). The caller holds the output lock, so nothing else creates {@code to} meanwhile.
     */
    public void rename(String from, String to) {
        Path a = new Path(from);
        Path b = new Path(to);
        FileSystem fs = fs(a);
        try {
            if (fs.exists(b)) throw new IOException(to + " already exists");
            if (!fs.rename(a, b)) {
                if (!fs.exists(a)) throw new FileNotFoundException(from + " does not exist");
                requireWritable(fs, a.getParent());
                throw new IOException("the file system refused (rename returned false) with no reason");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rename " + from + " to " + to + ": " + cause(e), e);
        }
    }

    /** The entries directly inside {@code dir}, as statuses sorted by name. */
    public List<FileStatus> list(String dir) {
        Path p = new Path(dir);
        try {
            List<FileStatus> l = new ArrayList<>(List.of(fs(p).listStatus(p)));
            l.sort(java.util.Comparator.comparing(st -> st.getPath().getName()));
            return l;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir + ": " + cause(e), e);
        }
    }

    public FileStatus status(String path) {
        Path p = new Path(path);
        try {
            return fs(p).getFileStatus(p);
        } catch (FileNotFoundException e) {
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stat " + path + ": " + cause(e), e);
        }
    }

    /** The last path component of a path string or URI. */
    public static String fileName(String path) {
        return new Path(URI.create(path.replace(" ", "%20")).getPath()).getName();
    }

    public long length(String path) {
        Path p = new Path(path);
        try {
            FileStatus st = fs(p).getFileStatus(p);
            return st.getLen();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stat " + path + ": " + e.getMessage(), e);
        }
    }
}
