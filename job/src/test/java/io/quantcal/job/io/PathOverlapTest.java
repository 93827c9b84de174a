package io.quantcal.job.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.job.config.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Output and inputs compared after qualifying, normalizing and resolving symbolic links. */
class PathOverlapTest {

    @TempDir
    Path tmp;

    final HadoopFiles files = new HadoopFiles(new Configuration());

    String refused(PathOverlap o, String output) {
        return assertThrows(ConfigException.class, () -> o.check("quantcal.output.path", output)).getMessage();
    }

    @Test
    void anOutputThatIsContainsOrLiesInsideAnInputIsRefused() throws Exception {
        Path data = Files.createDirectories(tmp.resolve("work/data/0-tshirt"));
        Path model = Files.writeString(tmp.resolve("work/model.onnx"), "m");
        PathOverlap o = new PathOverlap(files).input("the model (quantcal.model)", model.toString())
                .input("the calibration data (quantcal.calibration.path)", data.getParent().toString());

        String m = refused(o, model.toString());
        assertTrue(m.contains(" is the model (quantcal.model) " + model), m);
        m = refused(o, data.getParent().toString());
        assertTrue(m.contains(" is the calibration data"), m);
        m = refused(o, tmp.resolve("work").toString());
        assertTrue(m.contains(" contains the model (quantcal.model) " + model), m);
        m = refused(o, data.resolve("out").toString());
        assertTrue(m.contains(" lies inside the calibration data"), m);
        // "." and ".." are resolved: work/data/0-tshirt/../.. is work
        m = refused(o, data + "/../..");
        assertTrue(m.contains(" contains the model"), m);
        m = refused(o, tmp.resolve("work/data/") + "/");
        assertTrue(m.contains(" is the calibration data"), m);
        // a symbolic link to the data directory, and a path through one
        Path link = Files.createSymbolicLink(tmp.resolve("link"), data.getParent());
        m = refused(o, link.toString());
        assertTrue(m.contains(" is the calibration data"), m);
        m = refused(o, link.resolve("new/out").toString());
        assertTrue(m.contains(" lies inside the calibration data"), m);
        m = refused(o, "file://" + tmp.resolve("work"));
        assertTrue(m.contains(" contains"), m);
        // siblings whose names share a prefix do not overlap
        o.check("quantcal.output.path", tmp.resolve("work/data-out").toString());
        o.check("quantcal.output.path", tmp.resolve("work/model.onnx.out").toString());
        o.check("quantcal.output.path", tmp.resolve("elsewhere/out").toString());
    }

    @Test
    void anOutputInsideAnotherOutputsResumeCacheIsRefused() {
        PathOverlap o = new PathOverlap(files);
        String m = refused(o, tmp.resolve("run1.adaround-cache/0123abcd/out").toString());
        assertTrue(m.contains("lies inside the resume cache " + "file:" + tmp.resolve("run1.adaround-cache")), m);
        m = refused(o, tmp.resolve("run1.adaround-cache").toString());
        assertTrue(m.contains("lies inside the resume cache"), m);
    }

    @Test
    void canonicalResolvesRelativePaths() throws Exception {
        String cwd = Path.of("").toAbsolutePath().toRealPath().toString();
        assertEquals("file:" + cwd, new PathOverlap(files).canonical("."));
        assertEquals("file:" + Path.of(cwd).getParent(), new PathOverlap(files).canonical("../job/.."));
    }
}
