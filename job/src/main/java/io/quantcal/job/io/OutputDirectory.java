package io.quantcal.job.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;

/**
 * Atomic output. A run holds the output's {@link OutputLock} from start to commit and writes everything into a
 * temporary sibling {@code .<name>.tmp-<run id>-<unique>}. Commit replaces the output all or nothing: the old
 * output is moved aside to {@code .<name>.old-…}, the new one moved in, then the old one removed; if moving the new
 * one in fails, the old one is moved back. A run that was killed leaves at most those siblings and its lock; the
 * next run to the same output removes them (or puts an old output that was moved aside back, if the new one never
 * arrived).
 *
 * <p>Overwriting replaces only a quantcal output: a directory holding the run summary ({@value #MARKER}) a run
 * writes last. A regular file, or a directory with anything else, is refused whatever {@code overwrite} says.
 */
public final class OutputDirectory {

    /** The file whose presence marks a directory as a complete quantcal output. */
    public static final String MARKER = "run.json";

    private final HadoopFiles files;
    private final String finalPath;
    private final String tempPath;
    private final String oldPath;
    private final boolean overwrite;
    private final OutputLock lock;
    private boolean done;

    private OutputDirectory(HadoopFiles files, String finalPath, String tempPath, String oldPath, boolean overwrite,
                            OutputLock lock) {
        this.files = files;
        this.finalPath = finalPath;
        this.tempPath = tempPath;
        this.oldPath = oldPath;
        this.overwrite = overwrite;
        this.lock = lock;
    }

    /**
     * Starts writing {@code path} (the value of {@code quantcal.output.path}): takes its lock, cleans what an
     * interrupted run left, and checks that an existing output may be replaced, all before any work.
     *
     * @param note receives one line per thing cleaned up
     */
    public static OutputDirectory begin(HadoopFiles files, String path, boolean overwrite, String runId,
                                        Consumer<String> note) {
        Path p = files.qualify(path);
        Path parent = p.getParent();
        if (parent == null) {
            throw new IllegalStateException("quantcal.output.path " + path + " is the root of its file system;"
                    + " an output must be a directory of its own");
        }
        String qualified = p.toString();
        files.mkdirs(parent.toString());
        files.requireWritable(parent.toString());
        String name = p.getName();
        OutputLock lock = OutputLock.acquire(files, new Path(parent, "." + name + ".quantcal-lock"), runId, note);
        try {
            recover(files, parent, name, qualified, note);
            checkReplaceable(files, qualified, overwrite);
            String unique = runId + "-" + UUID.randomUUID().toString().substring(0, 8);
            String temp = new Path(parent, "." + name + ".tmp-" + unique).toString();
            String old = new Path(parent, "." + name + ".old-" + unique).toString();
            files.mkdirs(temp);
            return new OutputDirectory(files, qualified, temp, old, overwrite, lock);
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /** What a killed run left beside the output: its temporary directory, or an old output moved aside. */
    static void recover(HadoopFiles files, Path parent, String name, String finalPath, Consumer<String> note) {
        List<FileStatus> tmps = new ArrayList<>();
        List<FileStatus> olds = new ArrayList<>();
        for (FileStatus st : files.list(parent.toString())) {
            String n = st.getPath().getName();
            if (n.startsWith("." + name + ".tmp-")) tmps.add(st);
            else if (n.startsWith("." + name + ".old-")) olds.add(st);
        }
        boolean present = files.exists(finalPath);
        for (FileStatus st : olds) {
            if (!present && isQuantcalOutput(files, st.getPath().toString())) {
                // killed between moving the old output aside and moving the new one in: the old one is the output
                files.rename(st.getPath().toString(), finalPath);
                present = true;
                note.accept("put back the previous output from " + st.getPath() + " (an interrupted run had moved it aside)");
            } else {
                files.delete(st.getPath().toString());
                note.accept("removed " + st.getPath() + ", the previous output an interrupted run had replaced");
            }
        }
        for (FileStatus st : tmps) {
            files.delete(st.getPath().toString());
            note.accept("removed " + st.getPath() + ", the temporary directory of an interrupted run");
        }
    }

    /** A directory holding the summary a quantcal run writes last. */
    public static boolean isQuantcalOutput(HadoopFiles files, String dir) {
        String marker = new Path(dir, MARKER).toString();
        if (!files.isDirectory(dir) || !files.exists(marker)) return false;
        try {
            Map<?, ?> m = new ObjectMapper().readValue(files.readBytes(marker), Map.class);
            return m.containsKey("run_id") && m.containsKey("model_sha256");
        } catch (java.io.IOException | RuntimeException e) {
            return false;
        }
    }

    static void checkReplaceable(HadoopFiles files, String path, boolean overwrite) {
        FileStatus st = files.status(path);
        if (st == null) return;
        if (!overwrite) {
            throw new IllegalStateException("output " + path + " already exists (set quantcal.output.overwrite = true"
                    + " to replace it, if it is a quantcal output)");
        }
        if (!st.isDirectory()) {
            throw new IllegalStateException("output " + path + " is a regular file (" + st.getLen() + " bytes), not a"
                    + " quantcal output; quantcal.output.overwrite replaces only a directory a quantcal run wrote");
        }
        if (!isQuantcalOutput(files, path)) {
            List<FileStatus> entries = files.list(path);
            String shown = String.join(", ", entries.stream().limit(5).map(e -> e.getPath().getName()
                    + (e.isDirectory() ? "/" : "")).toList());
            throw new IllegalStateException("output " + path + " is a directory that is not a quantcal output (no valid "
                    + MARKER + "): it holds " + (entries.isEmpty() ? "nothing"
                    : entries.size() + " entries (" + shown + (entries.size() > 5 ? ", …" : "") + ")")
                    + "; quantcal.output.overwrite replaces only a directory a quantcal run wrote");
        }
        // everything inside must be removable, or the old output could not be removed after the swap
        files.requireWritable(path);
        for (FileStatus d : files.list(path)) requireRemovable(files, d);
    }

    private static void requireRemovable(HadoopFiles files, FileStatus st) {
        if (!st.isDirectory()) return;
        files.requireWritable(st.getPath().toString());
        for (FileStatus c : files.list(st.getPath().toString())) requireRemovable(files, c);
    }

    /** Where to write {@code relative} inside the (temporary) output. */
    public String resolve(String relative) {
        return new Path(tempPath, relative).toString();
    }

    public String finalPath() {
        return finalPath;
    }

    public String finalPath(String relative) {
        return new Path(finalPath, relative).toString();
    }

    public HadoopFiles files() {
        return files;
    }

    /** The temporary directory being written (for tests and messages). */
    public String tempPath() {
        return tempPath;
    }

    /** Moves the complete output in, replacing an old one all or nothing, and releases the lock. */
    public void commit() {
        try {
            boolean replacing = files.exists(finalPath);
            if (replacing) {
                checkReplaceable(files, finalPath, overwrite);
                step("move the old output aside to " + oldPath, () -> files.rename(finalPath, oldPath), null);
            }
            step("move the new output in from " + tempPath, () -> files.rename(tempPath, finalPath),
                    replacing ? () -> files.rename(oldPath, finalPath) : null);
            done = true;
            if (replacing) {
                try {
                    files.delete(oldPath);
                } catch (UncheckedIOException e) {
                    throw new IllegalStateException("output " + finalPath + " is complete, but step 'remove the old output"
                            + " moved aside to " + oldPath + "' failed: " + e.getMessage() + "; the next run to this output"
                            + " removes it", e);
                }
            }
        } finally {
            if (!done) {
                try {
                    files.delete(tempPath);
                } catch (UncheckedIOException e) {
                    // the next run to this output removes it
                }
            }
            done = true;
            lock.close();
        }
    }

    private void step(String what, Runnable action, Runnable undo) {
        try {
            action.run();
        } catch (RuntimeException e) {
            String restored = "";
            if (undo != null) {
                try {
                    undo.run();
                    restored = "; the old output was put back whole at " + finalPath;
                } catch (RuntimeException u) {
                    restored = "; putting the old output back failed too (" + u.getMessage() + "): it is whole at " + oldPath;
                }
            }
            throw new IllegalStateException("cannot replace output " + finalPath + ": step '" + what + "' failed: "
                    + e.getMessage() + restored, e);
        }
    }

    /** Deletes the temporary directory and releases the lock; safe to call after commit or twice. */
    public void abort() {
        if (!done) {
            done = true;
            try {
                files.delete(tempPath);
            } finally {
                lock.close();
            }
        }
    }
}
