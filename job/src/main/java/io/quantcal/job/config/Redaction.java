package io.quantcal.job.config;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Keeps credentials out of what a run writes (run.json), as Spark's UI and event log do with
 * {@code spark.redaction.regex}: a setting whose name looks like a credential has its value replaced, and a URI
 * value that carries a user and password has that part replaced.
 */
public final class Redaction {

    /** Spark's default {@code spark.redaction.regex}, widened to the names Hadoop and cloud stores use. */
    public static final String DEFAULT_REGEX =
            "(?i)secret|password|passwd|token|credential|access[.]?key|api[.]?key|private[.]?key|[.]key([.]|$)";
    public static final String REDACTED = "*********(redacted)";
    private static final Pattern USER_INFO = Pattern.compile("(?<=://)[^/@\\s]+:[^/@\\s]*@");

    private final Pattern names;

    private Redaction(Pattern names) {
        this.names = names;
    }

    /** The default rule, plus the user's own {@code spark.redaction.regex} when the config sets one. */
    public static Redaction of(Map<String, String> sparkConf) {
        String user = sparkConf.get("spark.redaction.regex");
        return new Redaction(Pattern.compile(user == null || user.isBlank() ? DEFAULT_REGEX : DEFAULT_REGEX + "|" + user));
    }

    /** A copy of {@code tree} (maps, lists, scalars as Jackson reads JSON) with credentials replaced. */
    public Map<String, Object> redact(Map<String, Object> tree) {
        return redactMap("", tree);
    }

    @SuppressWarnings("unchecked")
    private Object redact(String path, Object v) {
        if (v instanceof Map<?, ?> m) return redactMap(path, (Map<String, Object>) m);
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>();
            for (Object o : l) out.add(redact(path, o));
            return out;
        }
        if (names.matcher(path).find()) return REDACTED;
        if (v instanceof String s) return USER_INFO.matcher(s).replaceAll(REDACTED + "@");
        return v;
    }

    private Map<String, Object> redactMap(String path, Map<String, Object> m) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            out.put(e.getKey(), redact(path.isEmpty() ? e.getKey() : path + "." + e.getKey(), e.getValue()));
        }
        return out;
    }
}
