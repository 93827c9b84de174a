package io.quantcal.job.pipeline;

import io.quantcal.job.config.ConfigException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The known passes, each with what it needs from the passes before it and what it provides to the passes after it
 * (PPQ's passes declare the same about the graph they take). The order rules of {@code quantcal.pipeline} all follow
 * from these declarations, and are checked when the config is read, before Spark starts ({@link #checkOrder}):
 * <ul>
 *   <li>a pass that <em>needs</em> something can only run after a pass that provides it (easyquant starts from
 *       calibrated scales, so calibrate must come first);</li>
 *   <li>a pass that <em>uses</em> something, where the pipeline has a pass providing it, must run after that pass
 *       (calibrate measures the weights, so a fold-bn in the pipeline comes before it; export writes the integer
 *       weights, so an adaround in the pipeline comes before it);</li>
 *   <li>each pass runs at most once, and one pass at most chooses the integer weights (adaround or learn).</li>
 * </ul>
 * Adding a pass is one entry here (its class, needs, uses and provides) and nothing else of the order rules.
 */
public final class PassRegistry {

    /** What a pass can leave for the passes after it. */
    public enum Capability {
        FOLDED_MODEL("the BatchNorm-folded model"),
        EQUALIZED_MODEL("the equalized model"),
        CALIBRATED_SCALES("calibrated scales"),
        SEARCHED_SCALES("searched scales"),
        INTEGER_WEIGHTS("integer weights"),
        CORRECTED_BIASES("corrected biases"),
        QDQ_MODEL("the QDQ model and export files"),
        EVALUATION("the evaluation of the quantized model");

        private final String words;

        Capability(String words) {
            this.words = words;
        }

        public String words() {
            return words;
        }
    }

    /**
     * One known pass.
     *
     * @param needs    must be provided by an earlier pass of the pipeline
     * @param uses     if a pass of the pipeline provides it, that pass must be earlier (the result is read, so a
     *                 later change would not reach it)
     * @param provides what the pass leaves (or changes) for the passes after it
     */
    public record Entry(String name, Supplier<Pass> factory, Set<Capability> needs, Set<Capability> uses,
                        Set<Capability> provides) {
        public Entry {
            needs = Set.copyOf(needs);
            uses = Set.copyOf(uses);
            provides = Set.copyOf(provides);
        }
    }

    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        // the known passes, in the order a full pipeline runs them
        add("fold-bn", FoldBatchNormPass::new, none(), none(), of(Capability.FOLDED_MODEL));
        add("equalize", EqualizePass::new, none(), of(Capability.FOLDED_MODEL), of(Capability.EQUALIZED_MODEL));
        add("calibrate", CalibratePass::new, none(), of(Capability.FOLDED_MODEL, Capability.EQUALIZED_MODEL),
                of(Capability.CALIBRATED_SCALES));
        add("easyquant", EasyQuantPass::new, of(Capability.CALIBRATED_SCALES), none(), of(Capability.SEARCHED_SCALES));
        // adaround rounds at the final scales: a scale search after it would replace them and drop its codes
        add("adaround", AdaRoundPass::new, of(Capability.CALIBRATED_SCALES), of(Capability.SEARCHED_SCALES),
                of(Capability.INTEGER_WEIGHTS));
        // learn (LSQ / QIL) starts from the calibrated (or searched) steps and leaves its own steps and integer weights
        add("learn", LearnPass::new, of(Capability.CALIBRATED_SCALES), of(Capability.SEARCHED_SCALES),
                of(Capability.SEARCHED_SCALES, Capability.INTEGER_WEIGHTS));
        add("bias-correct", BiasCorrectPass::new, of(Capability.CALIBRATED_SCALES),
                of(Capability.SEARCHED_SCALES, Capability.INTEGER_WEIGHTS), of(Capability.CORRECTED_BIASES));
        add("export", ExportPass::new, of(Capability.CALIBRATED_SCALES),
                of(Capability.SEARCHED_SCALES, Capability.INTEGER_WEIGHTS, Capability.CORRECTED_BIASES),
                of(Capability.QDQ_MODEL));
        add("evaluate", EvaluatePass::new, of(Capability.CALIBRATED_SCALES),
                of(Capability.SEARCHED_SCALES, Capability.INTEGER_WEIGHTS, Capability.CORRECTED_BIASES),
                of(Capability.EVALUATION));
    }

    private PassRegistry() {}

    private static void add(String name, Supplier<Pass> factory, Set<Capability> needs, Set<Capability> uses,
                            Set<Capability> provides) {
        ENTRIES.put(name, new Entry(name, factory, needs, uses, provides));
    }

    private static Set<Capability> of(Capability first, Capability... rest) {
        return EnumSet.of(first, rest);
    }

    private static Set<Capability> none() {
        return EnumSet.noneOf(Capability.class);
    }

    /**
     * What a pass provides when it rewrites the FP32 network itself (weights or biases of {@code state.model()}), so
     * that the activations of the FP network differ after it. The other capabilities (scales, integer weights, the QDQ
     * model) leave the FP network as it is.
     */
    static final Set<Capability> FP_NETWORK_CHANGES = EnumSet.of(Capability.FOLDED_MODEL, Capability.EQUALIZED_MODEL,
            Capability.CORRECTED_BIASES);

    /**
     * The first pass strictly between {@code from} and {@code to} in {@code pipeline} that changes the FP network
     * ({@link #FP_NETWORK_CHANGES}); empty when there is none, or when {@code from} is not before {@code to}.
     */
    public static java.util.Optional<String> fpNetworkChangeBetween(List<String> pipeline, String from, String to) {
        int a = pipeline.indexOf(from), b = pipeline.indexOf(to);
        if (a < 0 || b <= a) return java.util.Optional.empty();
        for (String p : pipeline.subList(a + 1, b)) {
            Entry e = ENTRIES.get(p);
            if (e != null && e.provides().stream().anyMatch(FP_NETWORK_CHANGES::contains)) return java.util.Optional.of(p);
        }
        return java.util.Optional.empty();
    }

    /** The names of the known passes, in registry order. */
    public static List<String> names() {
        return List.copyOf(ENTRIES.keySet());
    }

    /** The entry of a known pass; an unknown name is a {@link ConfigException} naming quantcal.pipeline. */
    public static Entry entry(String name) {
        Entry e = ENTRIES.get(name);
        if (e == null) {
            throw new ConfigException("quantcal.pipeline: unknown pass '" + name + "', expected one of " + names());
        }
        return e;
    }

    /** A new instance of the named pass. */
    public static Pass create(String name) {
        return entry(name).factory().get();
    }

    /**
     * The pipeline's order against the declarations: every name known, no pass twice, every need provided by an
     * earlier pass, every use of something a pass of the pipeline provides placed after that pass. The first
     * problem is a {@link ConfigException} naming quantcal.pipeline, the pass at fault and what it is missing.
     */
    public static void checkOrder(List<String> pipeline) {
        checkOrder(pipeline, ENTRIES);
    }

    /** {@link #checkOrder(List)} against the given entries (a test declares a pass the registry does not hold yet). */
    static void checkOrder(List<String> pipeline, Map<String, Entry> known) {
        String shown = "quantcal.pipeline " + pipeline;
        Set<String> seen = new HashSet<>();
        for (String p : pipeline) {
            if (!known.containsKey(p)) {
                throw new ConfigException("quantcal.pipeline: unknown pass '" + p + "', expected one of "
                        + List.copyOf(known.keySet()));
            }
            if (!seen.add(p)) throw new ConfigException(shown + ": pass " + p + " appears twice; each pass runs at most once");
        }
        // two passes that both choose every layer's integer weights (adaround, learn) would overwrite each other
        List<String> rounding = pipeline.stream().filter(p -> known.get(p).provides().contains(Capability.INTEGER_WEIGHTS))
                .toList();
        if (rounding.size() > 1) {
            throw new ConfigException(shown + ": " + String.join(" and ", rounding) + " both choose the integer weights of"
                    + " every layer (" + Capability.INTEGER_WEIGHTS.words() + "); use one of them");
        }
        for (int i = 0; i < pipeline.size(); i++) {
            Entry e = known.get(pipeline.get(i));
            for (Capability c : sorted(e.needs())) {
                boolean before = false;
                for (int j = 0; j < i; j++) before |= known.get(pipeline.get(j)).provides().contains(c);
                if (!before) {
                    String by = String.join(" or ", providers(c, known));
                    throw new ConfigException(shown + ": " + e.name() + " needs " + by + " before it (" + e.name()
                            + " starts from " + c.words() + ", which " + by + " provides)");
                }
            }
            for (Capability c : sorted(e.uses())) {
                for (int j = i + 1; j < pipeline.size(); j++) {
                    Entry later = known.get(pipeline.get(j));
                    if (later.provides().contains(c)) {
                        throw new ConfigException(shown + ": " + later.name() + " must come before " + e.name() + " ("
                                + e.name() + " uses " + c.words() + ", which " + later.name() + " provides)");
                    }
                }
            }
        }
    }

    /** The registry's entries by name, in order. */
    static Map<String, Entry> entries() {
        return java.util.Collections.unmodifiableMap(ENTRIES);
    }

    private static List<Capability> sorted(Set<Capability> s) {
        List<Capability> l = new ArrayList<>(s);
        l.sort(null);
        return l;
    }

    /** The known passes that provide {@code c}, in registry order. */
    static List<String> providers(Capability c, Map<String, Entry> known) {
        return known.values().stream().filter(e -> e.provides().contains(c)).map(Entry::name).toList();
    }
}
