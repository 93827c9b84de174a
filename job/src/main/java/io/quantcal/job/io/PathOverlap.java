package io.quantcal.job.io;

import io.quantcal.job.config.ConfigException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Spark's rule "cannot overwrite a path that is also being read from", applied to every path a run reads: the
 * output (and the resume cache beside it) must not be, contain or lie inside an input. Paths are compared after
 * qualifying them (relative paths, {@code .} and {@code ..}) and resolving symbolic links where the file system
 * has them (the local file system through the OS; other file systems through {@link FileSystem#resolvePath}).
 */
public final class PathOverlap {

    /** Directory-name suffix of the AdaRound resume cache that sits beside an output. */
    public static final String CACHE_SUFFIX = ".adaround-cache";

    private final HadoopFiles files;
    private final Map<String, String> inputs = new LinkedHashMap<>();

    public PathOverlap(HadoopFiles files) {
        this.files = files;
    }

    /** Registers an input path; {@code what} names it in the error ("the model (quantcal.model)"). */
    public PathOverlap input(String what, String path) {
        if (path != null && !path.isBlank()) inputs.put(canonical(path), what + " " + path);
        return this;
    }

    /**
     * Refuses {@code output} (named by {@code key}) if it overlaps a registered input or lies inside another
     * output's resume cache.
     */
    public void check(String key, String output) {
        String out = canonical(output);
        apartFromInputs(key, output, out);
        for (Path p = new Path(out); p != null; p = p.getParent()) {
            if (p.getName().endsWith(CACHE_SUFFIX)) {
                throw new ConfigException(key + " " + output + " lies inside the resume cache " + p
                        + " of another output; choose an output path outside it");
            }
        }
    }

    /** Refuses {@code path} (named by {@code key}) if it is, contains or lies inside a registered input. */
    public void checkApartFromInputs(String key, String path) {
        apartFromInputs(key, path, canonical(path));
    }

    private void apartFromInputs(String key, String path, String out) {
        for (Map.Entry<String, String> e : inputs.entrySet()) {
            String in = e.getKey();
            String relation = out.equals(in) ? "is" : inside(out, in) ? "lies inside" : inside(in, out) ? "contains" : null;
            if (relation != null) {
                throw new ConfigException(key + " " + path + " (" + out + ") " + relation + " " + e.getValue()
                        + (out.equals(in) ? "" : " (" + in + ")")
                        + ": a run must not write where it reads; choose an output path apart from its inputs");
            }
        }
    }

    static boolean inside(String child, String parent) {
        String prefix = parent.endsWith("/") ? parent : parent + "/";
        return child.startsWith(prefix);
    }

    /**
     * The qualified, normalized path with symbolic links resolved in its longest existing prefix (the rest does not
     * exist yet, so it cannot be a link).
     */
    public String canonical(String path) {
        Path q = files.qualify(path);
        URI u = q.toUri().normalize();
        String p = u.getPath();
        if (p.length() > 1 && p.endsWith("/")) p = p.substring(0, p.length() - 1);
        if ("file".equals(u.getScheme())) {
            java.nio.file.Path local = java.nio.file.Path.of(p);
            java.nio.file.Path existing = local;
            while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) existing = existing.getParent();
            if (existing != null) {
                try {
                    local = existing.toRealPath().resolve(existing.relativize(local)).normalize();
                } catch (IOException e) {
                    // a dangling link: compare the path as written
                }
            }
            return "file:" + local;
        }
        Path n = new Path(u.getScheme(), u.getAuthority(), p);
        FileSystem fs = files.fs(n);
        Path existing = n;
        String rest = "";
        try {
            while (existing != null && !fs.exists(existing)) {
                rest = "/" + existing.getName() + rest;
                existing = existing.getParent();
            }
            if (existing != null) n = new Path(fs.resolvePath(existing).toString() + rest);
        } catch (IOException | UnsupportedOperationException e) {
            // no link resolution on this file system: the normalized path is the path
        }
        return n.toString();
    }
}
