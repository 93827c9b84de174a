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
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

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

    /** All files below {@code dir} (recursively), as qualified path strings, sorted. */
    public List<String> listFilesRecursively(String dir) {
        Path p = new Path(dir);
        List<String> out = new ArrayList<>();
        try {
            RemoteIterator<LocatedFileStatus> it = fs(p).listFiles(p, true);
            while (it.hasNext()) {
                LocatedFileStatus st = it.next();
                if (st.isFile()) out.add(st.getPath().toString());
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
        Path p = new Path(path);
        try (OutputStream out = fs(p).create(p, true)) {
            out.write(bytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        }
    }

    public void writeText(String path, String text) {
        writeBytes(path, text.getBytes(StandardCharsets.UTF_8));
    }

    public void mkdirs(String path) {
        Path p = new Path(path);
        try {
            if (!fs(p).mkdirs(p)) throw new IOException("mkdirs returned false");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + path + ": " + e.getMessage(), e);
        }
    }

    public void delete(String path) {
        Path p = new Path(path);
        try {
            fs(p).delete(p, true);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + path + ": " + e.getMessage(), e);
        }
    }

    public void rename(String from, String to) {
        Path a = new Path(from);
        Path b = new Path(to);
        try {
            if (!fs(a).rename(a, b)) throw new IOException("rename returned false");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rename " + from + " to " + to + ": " + e.getMessage(), e);
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
