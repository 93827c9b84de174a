package io.quantcal.job.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * One writer per output: a lock file {@code .<name>.quantcal-lock} beside the output, created exclusively
 * (O_EXCL on the local file system, create-without-overwrite on HDFS), held from the start of a run to its commit.
 * It records who holds it (run id, host, pid and the process's start time) and a heartbeat thread touches it, so a
 * later run can tell a live holder from one that was killed: on the same host the process must still be running;
 * on another host the heartbeat must be recent.
 */
public final class OutputLock implements AutoCloseable {

    static final long HEARTBEAT_MS = 15_000;
    /** A lock from another host whose heartbeat is older than this belongs to a run that is gone. */
    static final long STALE_MS = 120_000;

    private final HadoopFiles files;
    private final Path path;
    private final String token;
    private final Thread heartbeat;

    private OutputLock(HadoopFiles files, Path path, String token) {
        this.files = files;
        this.path = path;
        this.token = token;
        this.heartbeat = new Thread(this::beat, "quantcal-output-lock");
        heartbeat.setDaemon(true);
        heartbeat.start();
    }

    /** Who holds a lock, as its file says. */
    public record Holder(String runId, String host, long pid, String processStart, String token, long modified) {
        String describe() {
            return "run " + runId + " (pid " + pid + " on " + host + ", lock last touched "
                    + Instant.ofEpochMilli(modified) + ")";
        }

        /** The holder is certainly gone: its process ended (same host) or its heartbeat stopped (other host). */
        boolean gone(long now) {
            if (host.equals(hostName())) {
                return ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
                        .map(h -> !processStart.equals(start(h)))
                        .orElse(true);
            }
            return now - modified > STALE_MS;
        }
    }

    /**
     * Takes the lock at {@code path}. A lock left by a run that is gone is broken (and reported through
     * {@code note}); a live holder makes this fail naming it.
     */
    public static OutputLock acquire(HadoopFiles files, Path path, String runId, java.util.function.Consumer<String> note) {
        String token = UUID.randomUUID().toString();
        byte[] content = content(runId, token);
        for (int attempt = 0; attempt < 3; attempt++) {
            if (createExclusive(files, path, content)) return new OutputLock(files, path, token);
            Holder h = read(files, path);
            long now = System.currentTimeMillis();
            if (h == null) {
                // unreadable: a lock being written this moment, or a torn file left by a crash
                long age = modified(files, path);
                if (age >= 0 && now - age < STALE_MS) {
                    throw new IllegalStateException("output is being written by another run: lock " + path
                            + " was created " + (now - age) / 1000 + " s ago; wait for that run or remove the lock");
                }
            } else if (!h.gone(now)) {
                throw new IllegalStateException("output is being written by another " + h.describe() + " (lock " + path
                        + "); exactly one run may write an output at a time");
            }
            // break the dead holder's lock by moving it away: only one of several breakers can move that file
            Path broken = new Path(path.getParent(), path.getName() + ".broken-" + token);
            if (renameNoReplace(files, path, broken)) {
                Holder moved = read(files, broken);
                files.delete(broken.toString());
                if (h != null && moved != null && !h.token().equals(moved.token())) {
                    throw new IllegalStateException("output lock " + path + " changed hands while it was being broken;"
                            + " another run is starting on this output");
                }
                note.accept("removed the lock of " + (h == null ? "an interrupted run" : h.describe()) + ", which is no longer running");
            }
        }
        throw new IllegalStateException("cannot take the output lock " + path + ": other runs keep taking it");
    }

    private static byte[] content(String runId, String token) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("run_id", runId);
        m.put("host", hostName());
        m.put("pid", ProcessHandle.current().pid());
        m.put("process_start", start(ProcessHandle.current()));
        m.put("token", token);
        try {
            return new ObjectMapper().writeValueAsBytes(m);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String start(ProcessHandle h) {
        return h.info().startInstant().map(Instant::toString).orElse("");
    }

    static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    static boolean local(FileSystem fs) {
        return fs instanceof LocalFileSystem || fs instanceof RawLocalFileSystem;
    }

    /** Creates {@code path} with {@code content} only if nothing is there; false if something is. */
    static boolean createExclusive(HadoopFiles files, Path path, byte[] content) {
        FileSystem fs = files.fs(path);
        try {
            if (local(fs)) {
                try {
                    java.nio.file.Path p = localPath(fs, path);
                    Files.write(p, content, java.nio.file.StandardOpenOption.CREATE_NEW,
                            java.nio.file.StandardOpenOption.WRITE);
                    return true;
                } catch (FileAlreadyExistsException e) {
                    return false;
                }
            }
            if (fs.exists(path)) return false;
            try (OutputStream out = fs.create(path, false)) {
                out.write(content);
            }
            return true;
        } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the output lock " + path + ": " + HadoopFiles.cause(e), e);
        }
    }

    private static java.nio.file.Path localPath(FileSystem fs, Path p) {
        return java.nio.file.Path.of(fs.makeQualified(p).toUri().getPath());
    }

    static boolean renameNoReplace(HadoopFiles files, Path from, Path to) {
        FileSystem fs = files.fs(from);
        try {
            if (local(fs)) {
                try {
                    Files.move(localPath(fs, from), localPath(fs, to), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                    return true;
                } catch (java.nio.file.NoSuchFileException e) {
                    return false;
                }
            }
            return !fs.exists(to) && fs.rename(from, to);
        } catch (IOException e) {
            return false;
        }
    }

    static long modified(HadoopFiles files, Path path) {
        try {
            return files.fs(path).getFileStatus(path).getModificationTime();
        } catch (IOException e) {
            return -1;
        }
    }

    /** The holder recorded at {@code path}; null if there is none or it cannot be read. */
    @SuppressWarnings("unchecked")
    static Holder read(HadoopFiles files, Path path) {
        try {
            FileSystem fs = files.fs(path);
            FileStatus st = fs.getFileStatus(path);
            byte[] b;
            try (var in = fs.open(path)) {
                b = in.readAllBytes();
            }
            Map<String, Object> m = new ObjectMapper().readValue(new String(b, StandardCharsets.UTF_8), Map.class);
            return new Holder(String.valueOf(m.get("run_id")), String.valueOf(m.get("host")),
                    ((Number) m.get("pid")).longValue(), String.valueOf(m.get("process_start")),
                    String.valueOf(m.get("token")), st.getModificationTime());
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private void beat() {
        try {
            while (!Thread.currentThread().isInterrupted()) {
                Thread.sleep(HEARTBEAT_MS);
                try {
                    files.fs(path).setTimes(path, System.currentTimeMillis(), -1);
                } catch (IOException e) {
                    // a missed beat only makes the lock look older; the next one may succeed
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Releases the lock if it is still this run's. */
    @Override
    public void close() {
        heartbeat.interrupt();
        Holder h = read(files, path);
        if (h != null && h.token().equals(token)) files.delete(path.toString());
    }
}
