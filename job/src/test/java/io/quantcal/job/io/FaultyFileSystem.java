package io.quantcal.job.io;

import java.io.IOException;
import java.net.URI;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * The local file system under the scheme {@code faulty:}, failing chosen operations: {@link #fail} makes every
 * {@code rename} (of a source) or {@code delete} whose path contains a given text throw, as a real file system does
 * when a disk fills or permissions change midway.
 */
public final class FaultyFileSystem extends RawLocalFileSystem {

    private static final Map<String, String> FAULTS = new ConcurrentHashMap<>();

    /** Operation ("rename", "delete") fails for paths containing {@code text}. */
    public static void fail(String operation, String text) {
        FAULTS.put(operation, text);
    }

    public static void reset() {
        FAULTS.clear();
    }

    public static Configuration conf() {
        Configuration c = new Configuration();
        c.set("fs.faulty.impl", FaultyFileSystem.class.getName());
        c.setBoolean("fs.faulty.impl.disable.cache", true);
        return c;
    }

    @Override
    public URI getUri() {
        return URI.create("faulty:///");
    }

    @Override
    public String getScheme() {
        return "faulty";
    }

    private static void maybeFail(String op, Path p) throws IOException {
        String text = FAULTS.get(op);
        if (text != null && p.toString().contains(text)) throw new IOException("injected " + op + " failure on " + p);
    }

    /** Permission checks are the plain local file system's business (tested there); here every path is accessible. */
    @Override
    public void access(Path path, org.apache.hadoop.fs.permission.FsAction mode) {}

    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        maybeFail("rename", src);
        return super.rename(src, dst);
    }

    @Override
    public boolean delete(Path p, boolean recursive) throws IOException {
        maybeFail("delete", p);
        return super.delete(p, recursive);
    }
}
