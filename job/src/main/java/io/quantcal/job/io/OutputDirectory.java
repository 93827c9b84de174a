package io.quantcal.job.io;

import org.apache.hadoop.fs.Path;

/**
 * Atomic output: a run writes everything into a temporary sibling directory, which is renamed to the
 * output path only when the run is complete. A failed run deletes the temporary directory, so it leaves
 * no output (and an existing output is replaced only by a complete new one).
 */
public final class OutputDirectory {

    private final HadoopFiles files;
    private final String finalPath;
    private final String tempPath;
    private final boolean overwrite;
    private boolean done;

    private OutputDirectory(HadoopFiles files, String finalPath, String tempPath, boolean overwrite) {
        this.files = files;
        this.finalPath = finalPath;
        this.tempPath = tempPath;
        this.overwrite = overwrite;
    }

    /**
     * Starts writing {@code path}. An existing output is an error unless {@code overwrite}; the check is
     * repeated at commit, so a concurrent writer is not silently replaced.
     */
    public static OutputDirectory begin(HadoopFiles files, String path, boolean overwrite, String runId) {
        String qualified = files.qualify(path).toString();
        if (!overwrite && files.exists(qualified)) {
            throw new IllegalStateException("output " + qualified
                    + " already exists (set quantcal.output.overwrite = true to replace it)");
        }
        Path p = new Path(qualified);
        String temp = new Path(p.getParent(), "." + p.getName() + ".tmp-" + runId).toString();
        if (files.exists(temp)) files.delete(temp);
        files.mkdirs(temp);
        return new OutputDirectory(files, qualified, temp, overwrite);
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

    public void commit() {
        if (files.exists(finalPath)) {
            if (!overwrite) {
                abort();
                throw new IllegalStateException("output " + finalPath + " appeared while the run was writing");
            }
            files.delete(finalPath);
        }
        files.rename(tempPath, finalPath);
        done = true;
    }

    /** Deletes the temporary directory; safe to call after commit or twice. */
    public void abort() {
        if (!done) {
            files.delete(tempPath);
            done = true;
        }
    }
}
