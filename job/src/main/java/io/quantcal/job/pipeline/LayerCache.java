package io.quantcal.job.pipeline;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.io.HadoopFiles;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The resume cache's file format, shared by adaround and learn: one JSON file per finished layer (NaN written as
 * NaN), a stable format that is readable without quantcal's classes, written to a temporary file and renamed so a
 * reader never sees a partial result. The cache directory's key (AdaRoundPass.CacheKey) covers the quantcal
 * version and every setting that changes a layer.
 */
final class LayerCache {

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS.mappedFeature());

    private LayerCache() {}

    /** A layer's file in cache directory {@code dir}. */
    static String file(String dir, String layer) {
        return dir + "/" + java.net.URLEncoder.encode(layer, java.nio.charset.StandardCharsets.UTF_8) + ".layer.json"; // never the key file, key.json
    }

    static String json(Object result, String what) {
        try {
            return JSON.writeValueAsString(result);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + what, e);
        }
    }

    /** @param resumeKey the config key that turns resuming off, named in the error */
    static <T> T read(String path, String text, Class<T> type, String resumeKey) {
        try {
            return JSON.readValue(text, type);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the cached layer result " + path + " (delete it, or set "
                    + resumeKey + " = false): " + e.getMessage(), e);
        }
    }

    /** Temporary file, then rename: a reader never sees a partial result. */
    static void writeAtomically(HadoopFiles files, String path, String text) {
        String tmp = path + ".tmp-" + Long.toHexString(System.nanoTime());
        files.writeText(tmp, text);
        if (files.exists(path)) files.delete(path);
        files.rename(tmp, path);
    }
}
