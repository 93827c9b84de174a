package io.quantcal.job.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The validated configuration of one run. Every key lives under {@code quantcal} and is documented with its
 * default in {@code reference.conf}; an unknown key, a wrong type or an out-of-range value is a
 * {@link ConfigException} naming the key, raised before Spark starts.
 */
public record QuantcalConfig(
        String model,
        String runId,
        List<String> pipeline,
        Samples calibration,
        Preprocess preprocess,
        WeightQuant weights,
        ActivationQuant activations,
        boolean quantizeBias,
        Samples evaluation,
        Export export,
        String outputPath,
        boolean overwrite,
        int intraOpThreads,
        int kernelThreads,
        long memoryBudget,
        int maxSessions,
        String sparkMaster,
        String appName,
        Map<String, String> sparkConf,
        Dfq dfq,
        AdaRound adaround,
        EasyQuant easyquant,
        Learn learn,
        String rendered,
        String source,
        Exclude exclude,
        Inputs inputs,
        boolean evaluateAfterEachMethod,
        boolean evaluateSpeed) implements Serializable {

    /**
     * How Parquet columns and declared shapes map to the model's inputs: {@code parquetColumns} input name → column
     * ({@code quantcal.calibration.parquet.inputs}, also used for the evaluation data; empty: {@code parquet.column}
     * for a single-input model, else a column named like each input), and {@code shapes} input name → full shape,
     * batch first, -1 where the model's dimension is kept or varies ({@code quantcal.input-shapes}); {@code batchAxes}
     * input name → axis of its batch ({@code quantcal.input-batch-axes}); {@code values} input name → the one value
     * the deployment always feeds it, row-major ({@code quantcal.input-values}: the input becomes that constant).
     */
    public record Inputs(Map<String, String> parquetColumns, Map<String, List<Long>> shapes,
                         Map<String, Integer> batchAxes, Map<String, List<Double>> values) implements Serializable {

        public static final String COLUMNS_KEY = "quantcal.calibration.parquet.inputs";
        public static final String SHAPES_KEY = "quantcal.input-shapes";
        public static final String BATCH_AXES_KEY = "quantcal.input-batch-axes";
        public static final String VALUES_KEY = "quantcal.input-values";

        public Inputs {
            parquetColumns = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(parquetColumns));
            shapes = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(shapes));
            batchAxes = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(batchAxes));
            values = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(values));
        }

        public static Inputs none() {
            return new Inputs(Map.of(), Map.of(), Map.of(), Map.of());
        }

        /** {@link #values} as the arrays {@link io.quantcal.kernels.onnx.InputValues} takes. */
        public Map<String, double[]> valueArrays() {
            Map<String, double[]> out = new LinkedHashMap<>();
            values.forEach((k, v) -> out.put(k, v.stream().mapToDouble(Double::doubleValue).toArray()));
            return out;
        }
    }

    /** Quantizable nodes left in FP32 on purpose: by name, or every node of an op type. */
    public record Exclude(List<String> nodes, List<String> opTypes) implements Serializable {}

    /** The known passes: the registry's ({@link io.quantcal.job.pipeline.PassRegistry}). */
    public static final List<String> KNOWN_PASSES = io.quantcal.job.pipeline.PassRegistry.names();
    public static final List<String> CALIBRATORS = List.of("minmax", "percentile", "entropy", "mse");

    /** Where samples come from and how many. */
    public record Samples(String path, String format, int limit, long seed, int batchSize, int partitions,
                          boolean skipBadSamples, String labels, String parquetColumn, String parquetLabelColumn)
            implements Serializable {
        /** A labels file (not the "directories" rule), or null. */
        public String labelsFile() {
            return labels.equals("directories") || labels.isBlank() ? null : labels;
        }

        Samples resolved(java.util.function.UnaryOperator<String> q) {
            return new Samples(path.isBlank() ? path : q.apply(path), format, limit, seed, batchSize, partitions,
                    skipBadSamples, labelsFile() == null ? labels : q.apply(labels), parquetColumn, parquetLabelColumn);
        }
    }

    /**
     * The same configuration with every path resolved once, on the driver, to an absolute URI ({@code q}), so that a
     * relative path means the same thing on every executor.
     */
    public QuantcalConfig resolvedPaths(java.util.function.UnaryOperator<String> q) {
        return new QuantcalConfig(q.apply(model), runId, pipeline, calibration.resolved(q), preprocess, weights,
                activations, quantizeBias, evaluation.resolved(q), export, q.apply(outputPath), overwrite, intraOpThreads,
                kernelThreads, memoryBudget, maxSessions, sparkMaster, appName, sparkConf, dfq, adaround, easyquant, learn,
                rendered, source, exclude, inputs, evaluateAfterEachMethod, evaluateSpeed);
    }

    /** Image decoding: x = (pixel·scale − mean[c]) / std[c], center-cropped to width × height. */
    public record Preprocess(int channels, int resize, int width, int height, double scale, double[] mean,
                             double[] std, String layout) implements Serializable {
        public int size() {
            return channels * width * height;
        }

        public long[] shape(int batch) {
            return "NHWC".equals(layout) ? new long[] {batch, height, width, channels}
                    : new long[] {batch, channels, height, width};
        }
    }

    /**
     * @param rounding how calibrate rounds the weights to their integer codes: nearest (QuantizeLinear's rule) or
     *                 stochastic (seeded; the best of {@link Rounding#draws} draws per layer by layer-output error)
     */
    public record WeightQuant(int bits, boolean perChannel, boolean symmetric, String calibrator, double percentile,
                              Rounding rounding) implements Serializable {}

    /**
     * Weight rounding: {@code mode} nearest | stochastic; for stochastic, {@code draws} seeded draws per layer (one
     * Spark task each) scored by the layer output's MSE on the first {@code samples} calibration samples, the lowest
     * kept; {@code seed} with the layer and the draw number fixes each draw.
     */
    public record Rounding(String mode, int draws, int samples, long seed) implements Serializable {
        public static final List<String> MODES = List.of("nearest", "stochastic");

        public boolean stochastic() {
            return "stochastic".equals(mode);
        }
    }

    public record ActivationQuant(int bits, boolean symmetric, String calibrator, double percentile, int histogramBins)
            implements Serializable {
        public boolean needsHistogram() {
            return !"minmax".equals(calibrator);
        }
    }

    /**
     * @param profile the deployment target whose placement and rules the QDQ model follows (ort, tensorrt); it
     *                also decides which activation tensors calibrate gathers statistics of
     */
    public record Export(io.quantcal.kernels.onnx.QdqProfile profile, boolean qdq, boolean qdqWeightsAsPair,
                         boolean qdqPairPerConsumer, boolean tensorRtCache, int tensorRtVersion, boolean aimet,
                         String aimetVersion, boolean ortUnsignedWeights) implements Serializable {}

    /** Data-free quantization: cross-layer equalization, high-bias absorption, bias correction. */
    public record Dfq(boolean relu6AsRelu, int maxIterations, boolean absorbHighBias, String biasCorrection)
            implements Serializable {}

    /**
     * AdaRound (Nagel et al. 2020): calibration samples captured, Adam iterations, learning rate, λ, columns of X
     * per iteration, whether the layer output is compared after its fused ReLU / ReLU6 / Clip, resume from the
     * per-layer cache, seed of the column sampling, and where X comes from: {@code fp} (the FP network, eq. 25) or
     * {@code quantized} (the network with the earlier layers quantized, against the FP target: eq. 26).
     */
    public record AdaRound(int samples, int iterations, double learningRate, double lambda, int batchColumns,
                           boolean reluOutput, boolean resume, long seed, String inputs) implements Serializable {

        public static final List<String> INPUTS = List.of("fp", "quantized");

        /** The FP-input form with the given settings. */
        public AdaRound(int samples, int iterations, double learningRate, double lambda, int batchColumns,
                        boolean reluOutput, boolean resume, long seed) {
            this(samples, iterations, learningRate, lambda, batchColumns, reluOutput, resume, seed, "fp");
        }

        public boolean quantizedInputs() {
            return "quantized".equals(inputs);
        }
    }

    /**
     * EasyQuant scale search: grid [alpha·S, beta·S] in {@code segments} segments, at most {@code rounds}
     * alternations stopping below a gain of {@code epsilon}; {@code layers} empty = all; {@code mode} parallel
     * (FP inputs) or sequential (inputs from the network with the earlier layers quantized); {@code positions}
     * output positions kept per sample of a Conv layer (0 = all); {@code chunkSamples} consecutive sample ids per
     * (layer, chunk) problem, the unit whose cosine sums are added (a fixed chunking, not the partitions', so the
     * sums do not depend on the partitioning).
     */
    public record EasyQuant(int samples, double alpha, double beta, int segments, int rounds, double epsilon,
                            boolean outputAfterActivation, int blockSize, List<String> layers, String mode,
                            int positions, int chunkSamples) implements Serializable {
        public boolean sequential() {
            return mode.equals("sequential");
        }
    }

    /**
     * The learn pass: per quantizable layer, a learned quantizer ({@code method}: lsq, qil) on the layer's reconstruction
     * problem, captured as AdaRound's ({@code samples}, {@code inputs} fp | quantized, {@code reluOutput},
     * {@code batchColumns}, {@code seed}; finished layers cached for {@code resume}): Adam for {@code iterations} steps with {@code learningRate} relative to each
     * step size, and with {@code updateWeights} also W ({@code weightLearningRate}, in units of the channel's step).
     */
    public record Learn(String method, int samples, String inputs, int iterations, double learningRate,
                        boolean updateWeights, double weightLearningRate, int batchColumns, boolean reluOutput, long seed,
                        boolean resume, String rounding) implements Serializable {

        public static final List<String> METHODS = List.of("lsq", "qil");
        public static final List<String> ROUNDINGS = List.of("nearest", "adaround");

        /** AdaRound's rounding with LSQ's steps ({@code method = lsq}, {@code rounding = adaround}). */
        public boolean adaroundRounding() {
            return "adaround".equals(rounding);
        }

        /** The method the table's rows name: lsq, qil or lsq+adaround. */
        public String rowMethod() {
            return adaroundRounding() ? method + "+adaround" : method;
        }

        public boolean quantizedInputs() {
            return "quantized".equals(inputs);
        }
    }

    /** Parses {@code text} (HOCON) with {@code key=value} overrides on top, validated against reference.conf. */
    public static QuantcalConfig parse(String source, String text, List<String> overrides) {
        Config user;
        try {
            user = ConfigFactory.parseString(text, ConfigParseOptions.defaults().setOriginDescription(source));
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException("cannot parse config " + source + ": " + e.getMessage(), e);
        }
        Config reference = ConfigFactory.parseResources(QuantcalConfig.class, "/reference.conf");
        Config over = ConfigFactory.empty();
        for (String o : overrides) over = override(reference, o).withFallback(over);
        Config merged = over.withFallback(user);
        rejectUnknownKeys(merged, reference);
        Config c = merged.withFallback(reference).resolve();
        try {
            return fromConfig(c, source);
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException(e.getMessage(), e);
        }
    }

    /**
     * One {@code key=value} override as a value, not a HOCON fragment: the key (the root {@code quantcal.} may be
     * omitted) must be in reference.conf or under {@code spark.conf}; the value is taken as written, converted only
     * where the key's type says so (number, boolean, list). So {@code //}, {@code #}, quotes, {@code :}, {@code $},
     * newlines and URIs arrive unchanged.
     */
    static Config override(Config reference, String o) {
        int eq = o.indexOf('=');
        if (eq <= 0) throw new ConfigException("override '" + firstLine(o) + "': expected key=value");
        String key = o.substring(0, eq).trim();
        String value = o.substring(eq + 1);
        if (!key.startsWith("quantcal.")) key = "quantcal." + key;
        try {
            com.typesafe.config.ConfigUtil.splitPath(key);
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException("override '" + firstLine(o) + "': " + key + " is not a config key");
        }
        Object v;
        if (key.startsWith("quantcal.spark.conf.") || key.startsWith(Inputs.COLUMNS_KEY + ".")) {
            v = value;
        } else if (key.startsWith(Inputs.SHAPES_KEY + ".")) {
            v = list(key, value, List.of(1L));
        } else if (key.startsWith(Inputs.BATCH_AXES_KEY + ".")) {
            v = number(key, value.trim());
        } else if (key.startsWith(Inputs.VALUES_KEY + ".")) {
            v = value.trim().startsWith("[") ? list(key, value, List.of(1.0)) : number(key, value.trim());
        } else if (!reference.hasPathOrNull(key)) {
            throw new ConfigException("unknown config key " + key + " (override '" + firstLine(o)
                    + "'; every key is listed in reference.conf)");
        } else if (reference.getIsNull(key)) {
            v = value;
        } else {
            ConfigValue ref = reference.getValue(key);
            v = switch (ref.valueType()) {
                case STRING -> value;
                case NUMBER -> number(key, value.trim());
                case BOOLEAN -> bool(key, value.trim());
                case LIST -> list(key, value, (List<?>) ref.unwrapped());
                default -> throw new ConfigException(key + " is a section, not a value: override its keys (" + key
                        + ".<key>=...)");
            };
        }
        return ConfigFactory.empty().withValue(key, com.typesafe.config.ConfigValueFactory.fromAnyRef(v,
                "override " + key));
    }

    private static String firstLine(String s) {
        return s.lines().findFirst().orElse("");
    }

    private static Number number(String key, String value) {
        // plain decimal notation only: Double.parseDouble would also take "4d", "NaN", "Infinity" and hex floats
        if (value.matches("[-+]?\\d+")) {
            try {
                return Long.parseLong(value);
            } catch (NumberFormatException e) {
                // too large for a long: a double below
            }
        }
        if (!value.matches("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?")) {
            throw new ConfigException(key + ": expected a number, got '" + firstLine(value) + "'");
        }
        return Double.parseDouble(value);
    }

    private static Boolean bool(String key, String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "true", "yes", "on" -> true;
            case "false", "no", "off" -> false;
            default -> throw new ConfigException(key + ": expected true or false, got '" + firstLine(value) + "'");
        };
    }

    /**
     * A list override: {@code [a, b]} or {@code a,b}; items are trimmed, may be double-quoted (to hold a comma), and
     * are numbers where the key's default list holds numbers.
     */
    private static List<Object> list(String key, String value, List<?> reference) {
        String v = value.trim();
        if (v.startsWith("[")) {
            if (!v.endsWith("]")) throw new ConfigException(key + ": expected a list [a, b, ...], got '" + firstLine(value) + "'");
            v = v.substring(1, v.length() - 1);
        }
        boolean numeric = !reference.isEmpty() && reference.get(0) instanceof Number;
        List<Object> out = new ArrayList<>();
        if (v.isBlank()) return out;
        StringBuilder item = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i <= v.length(); i++) {
            char c = i < v.length() ? v.charAt(i) : ',';
            if (c == '"') {
                quoted = !quoted;
            } else if (c == ',' && !quoted) {
                String it = item.toString().trim();
                out.add(numeric ? number(key, it) : it);
                item.setLength(0);
            } else {
                item.append(c);
            }
        }
        if (quoted) throw new ConfigException(key + ": unbalanced quote in '" + firstLine(value) + "'");
        return out;
    }

    private static void rejectUnknownKeys(Config user, Config reference) {
        Set<String> unknown = new TreeSet<>();
        for (Map.Entry<String, ConfigValue> e : user.entrySet()) {
            String key = e.getKey();
            if (!key.startsWith("quantcal.")) {
                String root = com.typesafe.config.ConfigUtil.splitPath(key).get(0);
                throw new ConfigException("config key " + key + " is outside the quantcal { } block"
                        + (distance(root, "quantcal") <= 2 ? " (is '" + root + "' a misspelling of 'quantcal'?)" : "")
                        + ": every key lives under quantcal, as listed in reference.conf");
            }
            if (key.startsWith("quantcal.spark.conf.") || key.startsWith(Inputs.COLUMNS_KEY + ".")
                    || key.startsWith(Inputs.SHAPES_KEY + ".") || key.startsWith(Inputs.BATCH_AXES_KEY + ".")
                    || key.startsWith(Inputs.VALUES_KEY + ".")) {
                continue; // maps keyed by the model's input names, checked against the model before any work
            }
            if (!reference.hasPathOrNull(key)) unknown.add(key);
        }
        if (!unknown.isEmpty()) {
            throw new ConfigException("unknown config key" + (unknown.size() > 1 ? "s " : " ") + String.join(", ", unknown)
                    + " (every key is listed in reference.conf)");
        }
    }

    /**
     * The order rules of the passes, checked before Spark starts: they follow from what each pass needs and provides,
     * declared in {@link io.quantcal.job.pipeline.PassRegistry}.
     */
    static void checkPassOrder(List<String> pipeline) {
        io.quantcal.job.pipeline.PassRegistry.checkOrder(pipeline);
    }

    /** Levenshtein distance, for "did you mean". */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                cur[j] = Math.min(Math.min(cur[j - 1], prev[j]) + 1, prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    private static QuantcalConfig fromConfig(Config root, String source) {
        Config q = root.getConfig("quantcal");
        String model = q.getString("model");
        if (model.isBlank()) throw new ConfigException("quantcal.model: expected the path of an ONNX model, got nothing");
        List<String> pipeline = q.getStringList("pipeline");
        checkPassOrder(pipeline);
        String runId = q.getString("run-id");
        if (!runId.matches("[A-Za-z0-9._-]*") || runId.startsWith(".")) {
            throw new ConfigException("quantcal.run-id: expected letters, digits, '.', '_' or '-' (it names files), got '"
                    + runId.lines().findFirst().orElse("") + "'");
        }
        Config cal = q.getConfig("calibration");
        Samples calibration = samples("quantcal.calibration", cal, cal.getString("labels"));
        if (calibration.path().isBlank() && (pipeline.contains("calibrate") || pipeline.contains("evaluate"))) {
            throw new ConfigException("quantcal.calibration.path: expected an images directory or Parquet path, got nothing");
        }
        Config ev = q.getConfig("evaluation");
        Samples evaluation = new Samples(
                ev.getString("path").isBlank() ? calibration.path() : ev.getString("path"),
                format("quantcal.evaluation.format", ev.getString("format")),
                nonNegative("quantcal.evaluation.limit", ev.getInt("limit")),
                calibration.seed(), calibration.batchSize(), calibration.partitions(), calibration.skipBadSamples(),
                ev.getString("labels"), calibration.parquetColumn(), calibration.parquetLabelColumn());

        Config pp = cal.getConfig("preprocess");
        int channels = pp.getInt("channels");
        if (channels != 1 && channels != 3) {
            throw new ConfigException("quantcal.calibration.preprocess.channels: expected 1 (grayscale) or 3 (RGB), got " + channels);
        }
        double[] mean = doubles(pp, "mean");
        double[] std = doubles(pp, "std");
        for (String[] k : new String[][] {{"mean", ""}, {"std", ""}}) {
            int n = (k[0].equals("mean") ? mean : std).length;
            if (n != 1 && n != channels) {
                throw new ConfigException("quantcal.calibration.preprocess." + k[0] + ": expected 1 or " + channels
                        + " values (one per channel), got " + n);
            }
        }
        for (double s : std) {
            if (!(s > 0)) throw new ConfigException("quantcal.calibration.preprocess.std: expected values > 0, got " + s);
        }
        String layout = pp.getString("layout").toUpperCase(Locale.ROOT);
        if (!layout.equals("NCHW") && !layout.equals("NHWC")) {
            throw new ConfigException("quantcal.calibration.preprocess.layout: expected NCHW or NHWC, got " + layout);
        }
        Preprocess preprocess = new Preprocess(channels, nonNegative("quantcal.calibration.preprocess.resize", pp.getInt("resize")),
                positive("quantcal.calibration.preprocess.width", pp.getInt("width")),
                positive("quantcal.calibration.preprocess.height", pp.getInt("height")),
                pp.getDouble("scale"), expand(mean, channels), expand(std, channels), layout);

        Config w = q.getConfig("quantization.weights");
        String gran = w.getString("granularity");
        if (!gran.equals("per-tensor") && !gran.equals("per-channel")) {
            throw new ConfigException("quantcal.quantization.weights.granularity: expected per-tensor or per-channel, got " + gran);
        }
        WeightQuant weights = new WeightQuant(bits("quantcal.quantization.weights.bits", w.getInt("bits")),
                gran.equals("per-channel"), w.getBoolean("symmetric"),
                calibrator("quantcal.quantization.weights.calibrator", w.getString("calibrator")),
                percentile("quantcal.quantization.weights.percentile", w.getDouble("percentile")),
                new Rounding(oneOf("quantcal.quantization.weights.rounding", w.getString("rounding"), Rounding.MODES),
                        positive("quantcal.quantization.weights.rounding-draws", w.getInt("rounding-draws")),
                        positive("quantcal.quantization.weights.rounding-samples", w.getInt("rounding-samples")),
                        w.getLong("rounding-seed")));
        if (weights.rounding().stochastic()) {
            for (String p : List.of("adaround", "learn")) {
                if (pipeline.contains(p)) {
                    throw new ConfigException("quantcal.quantization.weights.rounding: stochastic chooses the integer weights"
                            + " in calibrate, and pass " + p + " in quantcal.pipeline would replace them; use nearest with " + p);
                }
            }
        }
        Config a = q.getConfig("quantization.activations");
        int bins = a.getInt("histogram-bins");
        if (bins < 128 || bins > 1 << 16) {
            throw new ConfigException("quantcal.quantization.activations.histogram-bins: expected 128..65536, got " + bins);
        }
        ActivationQuant activations = new ActivationQuant(bits("quantcal.quantization.activations.bits", a.getInt("bits")),
                a.getBoolean("symmetric"),
                calibrator("quantcal.quantization.activations.calibrator", a.getString("calibrator")),
                percentile("quantcal.quantization.activations.percentile", a.getDouble("percentile")), bins);

        Config ex = q.getConfig("export");
        String aimetVersion = ex.getString("aimet-version");
        if (!aimetVersion.equals("0.6.1") && !aimetVersion.equals("1.0.0")) {
            throw new ConfigException("quantcal.export.aimet-version: expected 0.6.1 or 1.0.0, got " + aimetVersion);
        }
        io.quantcal.kernels.onnx.QdqProfile profile = io.quantcal.kernels.onnx.QdqProfile.byId(ex.getString("profile"));
        if (profile == null) {
            throw new ConfigException("quantcal.export.profile: expected ort or tensorrt, got " + ex.getString("profile"));
        }
        if (profile == io.quantcal.kernels.onnx.QdqProfile.TENSORRT) {
            // TensorRT's explicit quantization runs signed int8 with zero point 0 only
            if (activations.bits() != 8) {
                throw new ConfigException("quantcal.quantization.activations.bits: export.profile = tensorrt takes 8-bit"
                        + " activations (TensorRT's int8), got " + activations.bits());
            }
            if (weights.bits() != 8 || !weights.symmetric()) {
                throw new ConfigException("quantcal.quantization.weights: export.profile = tensorrt takes 8-bit symmetric"
                        + " weights (TensorRT's int8, zero point 0), got bits = " + weights.bits() + ", symmetric = "
                        + weights.symmetric());
            }
        }
        String weightType = ex.getString("ort-weight-type");
        if (!weightType.equals("int8") && !weightType.equals("uint8")) {
            throw new ConfigException("quantcal.export.ort-weight-type: expected int8 or uint8, got " + weightType);
        }
        Export export = new Export(profile, ex.getBoolean("qdq"), ex.getBoolean("qdq-weights-as-pair"),
                ex.getBoolean("qdq-pair-per-consumer"), ex.getBoolean("tensorrt-cache"),
                positive("quantcal.export.tensorrt-version", ex.getInt("tensorrt-version")), ex.getBoolean("aimet"), aimetVersion,
                weightType.equals("uint8"));

        String out = q.getString("output.path");
        if (out.isBlank()) throw new ConfigException("quantcal.output.path: expected the directory the run writes, got nothing");

        Map<String, String> sparkConf = new LinkedHashMap<>();
        Config sc = q.getConfig("spark.conf");
        List<String> keys = new ArrayList<>();
        for (Map.Entry<String, ConfigValue> e : sc.entrySet()) keys.add(e.getKey());
        keys.sort(null);
        for (String k : keys) {
            ConfigValue v = sc.getValue(k);
            if (v.valueType() == ConfigValueType.OBJECT || v.valueType() == ConfigValueType.LIST) {
                throw new ConfigException("quantcal.spark.conf." + k + ": expected a string, number or boolean");
            }
            sparkConf.put(k.replace("\"", ""), String.valueOf(v.unwrapped()));
        }
        Config d = q.getConfig("dfq");
        String bc = d.getString("bias-correction");
        if (!bc.equals("empirical") && !bc.equals("analytic")) {
            throw new ConfigException("quantcal.dfq.bias-correction: expected empirical or analytic, got " + bc);
        }
        Dfq dfq = new Dfq(d.getBoolean("relu6-as-relu"), positive("quantcal.dfq.max-iterations", d.getInt("max-iterations")),
                d.getBoolean("absorb-high-bias"), bc);
        Config ar = q.getConfig("adaround");
        double lr = ar.getDouble("learning-rate");
        if (!(lr > 0) || Double.isInfinite(lr)) throw new ConfigException("quantcal.adaround.learning-rate: expected > 0, got " + lr);
        double lambda = ar.getDouble("lambda");
        if (!(lambda >= 0) || Double.isInfinite(lambda)) throw new ConfigException("quantcal.adaround.lambda: expected >= 0, got " + lambda);
        String arInputs = ar.getString("inputs");
        if (!AdaRound.INPUTS.contains(arInputs)) {
            throw new ConfigException("quantcal.adaround.inputs: expected fp or quantized, got " + arInputs);
        }
        AdaRound adaround = new AdaRound(positive("quantcal.adaround.samples", ar.getInt("samples")),
                positive("quantcal.adaround.iterations", ar.getInt("iterations")), lr, lambda,
                positive("quantcal.adaround.batch-columns", ar.getInt("batch-columns")), ar.getBoolean("relu-output"),
                ar.getBoolean("resume"), ar.getLong("seed"), arInputs);
        EasyQuant easyquant = easyquant(q.getConfig("easyquant"));
        Learn learn = learn(q.getConfig("learn"));
        if (pipeline.contains("learn") && learn.adaroundRounding() && !learn.method().equals("lsq")) {
            throw new ConfigException("quantcal.learn.rounding: adaround combines AdaRound's rounding with LSQ's steps;"
                    + " it needs quantcal.learn.method = lsq, got " + learn.method());
        }
        if (pipeline.contains("learn") && learn.adaroundRounding() && learn.updateWeights()) {
            throw new ConfigException("quantcal.learn.rounding: with adaround the rounding of the original weights is"
                    + " learned; quantcal.learn.update-weights = true (fine-tuning the weights) is not combined with it");
        }
        if (pipeline.contains("learn") && learn.method().equals("qil") && !weights.symmetric()) {
            throw new ConfigException("quantcal.learn.method: qil quantizes weights symmetrically (sign(w) times the"
                    + " interval transform of |w|); set quantcal.quantization.weights.symmetric = true");
        }
        return new QuantcalConfig(model, runId, List.copyOf(pipeline), calibration, preprocess,
                weights, activations, q.getBoolean("quantization.bias"), evaluation, export, out,
                q.getBoolean("output.overwrite"),
                positive("quantcal.runtime.intra-op-threads", q.getInt("runtime.intra-op-threads")),
                nonNegative("quantcal.runtime.kernel-threads", q.getInt("runtime.kernel-threads")),
                memoryBudget(q),
                positive("quantcal.runtime.max-sessions", q.getInt("runtime.max-sessions")),
                q.getString("spark.master"), q.getString("spark.app-name"), sparkConf, dfq, adaround, easyquant, learn,
                root.getConfig("quantcal").root().render(com.typesafe.config.ConfigRenderOptions.concise()), source,
                exclude(q.getConfig("quantization.exclude")), inputs(q),
                flag(ev, "after-each-method", "quantcal.evaluation.after-each-method"),
                flag(ev, "speed", "quantcal.evaluation.speed"));
    }

    /** A boolean key, an error naming {@code key} in full when the file gives it another type. */
    private static boolean flag(Config c, String path, String key) {
        try {
            return c.getBoolean(path);
        } catch (com.typesafe.config.ConfigException.WrongType e) {
            throw new ConfigException(key + ": expected true or false, got '" + firstLine(c.getValue(path).unwrapped().toString())
                    + "'", e);
        }
    }

    /** The input maps: each column a non-empty string, each shape a non-empty list of integers -1 or >= 1. */
    private static Inputs inputs(Config q) {
        Map<String, String> columns = new LinkedHashMap<>();
        com.typesafe.config.ConfigObject co = q.getObject("calibration.parquet.inputs");
        for (String name : new TreeSet<>(co.keySet())) {
            ConfigValue v = co.get(name);
            String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "calibration", "parquet", "inputs", name);
            if (v.valueType() != ConfigValueType.STRING || String.valueOf(v.unwrapped()).isBlank()) {
                throw new ConfigException(key + ": expected the name of a Parquet column (model input " + name
                        + " = column), got " + v.render(com.typesafe.config.ConfigRenderOptions.concise()));
            }
            columns.put(name, (String) v.unwrapped());
        }
        Map<String, List<Long>> shapes = new LinkedHashMap<>();
        com.typesafe.config.ConfigObject so = q.getObject("input-shapes");
        for (String name : new TreeSet<>(so.keySet())) {
            ConfigValue v = so.get(name);
            String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-shapes", name);
            String shown = v.render(com.typesafe.config.ConfigRenderOptions.concise());
            List<Long> dims = new ArrayList<>();
            if (v.valueType() == ConfigValueType.LIST) {
                for (Object d : (List<?>) v.unwrapped()) {
                    if (!(d instanceof Number n) || n.doubleValue() != n.longValue() || (n.longValue() < 1 && n.longValue() != -1)) {
                        dims = null;
                        break;
                    }
                    dims.add(n.longValue());
                }
            }
            if (v.valueType() != ConfigValueType.LIST || dims == null || dims.isEmpty()) {
                throw new ConfigException(key + ": expected the input's full shape, batch first, as a list of integers"
                        + " (-1 for a dimension that varies or is the model's, e.g. [-1, 128]), got " + shown);
            }
            shapes.put(name, List.copyOf(dims));
        }
        Map<String, Integer> axes = new LinkedHashMap<>();
        com.typesafe.config.ConfigObject ao = q.getObject("input-batch-axes");
        for (String name : new TreeSet<>(ao.keySet())) {
            ConfigValue v = ao.get(name);
            String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-batch-axes", name);
            if (!(v.unwrapped() instanceof Number n) || n.doubleValue() != n.intValue() || n.intValue() < 0) {
                throw new ConfigException(key + ": expected the axis of the input's batch dimension, an integer from 0 (e.g."
                        + " 1 for a sequence-first [T, N, F] input), got " + v.render(com.typesafe.config.ConfigRenderOptions.concise()));
            }
            axes.put(name, n.intValue());
        }
        Map<String, List<Double>> values = new LinkedHashMap<>();
        com.typesafe.config.ConfigObject vo = q.getObject("input-values");
        for (String name : new TreeSet<>(vo.keySet())) {
            ConfigValue v = vo.get(name);
            String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-values", name);
            List<Double> xs = new ArrayList<>();
            if (v.unwrapped() instanceof Number n) {
                xs.add(n.doubleValue());
            } else if (v.valueType() == ConfigValueType.LIST) {
                for (Object o : (List<?>) v.unwrapped()) {
                    if (!(o instanceof Number n)) {
                        xs = null;
                        break;
                    }
                    xs.add(n.doubleValue());
                }
            } else {
                xs = null;
            }
            if (xs == null || xs.isEmpty()) {
                throw new ConfigException(key + ": expected the value the input is always fed, a number (e.g. 16000 for a"
                        + " sample rate) or a list of numbers in row-major order, got "
                        + v.render(com.typesafe.config.ConfigRenderOptions.concise()));
            }
            values.put(name, List.copyOf(xs));
        }
        return new Inputs(columns, shapes, axes, values);
    }

    /** {@link #AUTO_MEMORY_BUDGET} marks "auto": the budget is derived from the JVM's memory when the run starts. */
    public static final long AUTO_MEMORY_BUDGET = -1;

    /** quantcal.runtime.memory-budget: "auto" or a size ("768m", "2g", bytes), at least 1 MiB. */
    private static long memoryBudget(Config q) {
        String key = "quantcal.runtime.memory-budget";
        String text = q.getString("runtime.memory-budget").strip();
        if (text.equalsIgnoreCase("auto")) return AUTO_MEMORY_BUDGET;
        long bytes;
        try {
            bytes = q.getBytes("runtime.memory-budget");
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException(key + ": expected auto or a size such as 768m or 2g, got '" + text + "'");
        }
        if (bytes < 1L << 20) throw new ConfigException(key + ": expected at least 1m (1 MiB), got '" + text + "'");
        return bytes;
    }

    private static Exclude exclude(Config e) {
        List<String> ops = List.copyOf(e.getStringList("op-types"));
        for (String op : ops) {
            if (!io.quantcal.kernels.onnx.QuantizableNode.OP_TYPES.contains(op)) {
                throw new ConfigException("quantcal.quantization.exclude.op-types: expected Conv, Gemm or MatMul, got " + op);
            }
        }
        return new Exclude(List.copyOf(e.getStringList("nodes")), ops);
    }

    private static Learn learn(Config l) {
        String k = "quantcal.learn.";
        double lr = l.getDouble("learning-rate");
        if (!(lr > 0) || Double.isInfinite(lr)) throw new ConfigException(k + "learning-rate: expected a finite number > 0, got " + lr);
        double wlr = l.getDouble("weight-learning-rate");
        if (!(wlr > 0) || Double.isInfinite(wlr)) {
            throw new ConfigException(k + "weight-learning-rate: expected a finite number > 0, got " + wlr);
        }
        return new Learn(oneOf(k + "method", l.getString("method"), Learn.METHODS), positive(k + "samples", l.getInt("samples")),
                oneOf(k + "inputs", l.getString("inputs"), AdaRound.INPUTS), positive(k + "iterations", l.getInt("iterations")),
                lr, l.getBoolean("update-weights"), wlr, positive(k + "batch-columns", l.getInt("batch-columns")),
                l.getBoolean("relu-output"), l.getLong("seed"), l.getBoolean("resume"),
                oneOf(k + "rounding", l.getString("rounding"), Learn.ROUNDINGS));
    }

    private static EasyQuant easyquant(Config e) {
        double alpha = e.getDouble("alpha");
        double beta = e.getDouble("beta");
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new ConfigException("quantcal.easyquant.alpha: expected a number > 0, got " + alpha);
        }
        if (!(beta >= alpha) || Double.isInfinite(beta)) {
            throw new ConfigException("quantcal.easyquant.beta: expected a finite number >= quantcal.easyquant.alpha ("
                    + alpha + "), got " + beta);
        }
        double epsilon = e.getDouble("epsilon");
        if (!(epsilon >= 0) || Double.isInfinite(epsilon)) {
            throw new ConfigException("quantcal.easyquant.epsilon: expected a finite number >= 0, got " + epsilon);
        }
        return new EasyQuant(positive("quantcal.easyquant.samples", e.getInt("samples")), alpha, beta,
                positive("quantcal.easyquant.segments", e.getInt("segments")),
                positive("quantcal.easyquant.rounds", e.getInt("rounds")), epsilon,
                e.getBoolean("output-after-activation"),
                positive("quantcal.easyquant.block-size", e.getInt("block-size")), List.copyOf(e.getStringList("layers")),
                oneOf("quantcal.easyquant.mode", e.getString("mode"), List.of("parallel", "sequential")),
                nonNegative("quantcal.easyquant.positions", e.getInt("positions")),
                positive("quantcal.easyquant.chunk-samples", e.getInt("chunk-samples")));
    }

    private static Samples samples(String prefix, Config c, String labels) {
        return new Samples(c.getString("path"), format(prefix + ".format", c.getString("format")),
                nonNegative(prefix + ".limit", c.getInt("limit")), c.getLong("seed"),
                positive(prefix + ".batch-size", c.getInt("batch-size")),
                nonNegative(prefix + ".partitions", c.getInt("partitions")), c.getBoolean("skip-bad-samples"),
                labels, c.getString("parquet.column"), c.getString("parquet.label-column"));
    }

    private static String format(String key, String v) {
        if (!v.equals("images") && !v.equals("parquet")) {
            throw new ConfigException(key + ": expected images or parquet, got " + v);
        }
        return v;
    }

    private static String calibrator(String key, String v) {
        if (!CALIBRATORS.contains(v)) throw new ConfigException(key + ": expected one of " + CALIBRATORS + ", got " + v);
        return v;
    }

    private static int bits(String key, int v) {
        if (v < 2 || v > 16) throw new ConfigException(key + ": expected 2..16, got " + v);
        return v;
    }

    private static double percentile(String key, double v) {
        if (!(v > 50 && v <= 100)) throw new ConfigException(key + ": expected a percentile in (50, 100], got " + v);
        return v;
    }

    private static int positive(String key, int v) {
        if (v <= 0) throw new ConfigException(key + ": expected a positive integer, got " + v);
        return v;
    }

    private static String oneOf(String key, String v, List<String> allowed) {
        if (!allowed.contains(v)) throw new ConfigException(key + ": expected one of " + allowed + ", got '" + v + "'");
        return v;
    }

    private static int nonNegative(String key, int v) {
        if (v < 0) throw new ConfigException(key + ": expected an integer >= 0, got " + v);
        return v;
    }

    private static double[] doubles(Config c, String key) {
        return c.getDoubleList(key).stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static double[] expand(double[] v, int channels) {
        if (v.length == channels) return v;
        double[] out = new double[channels];
        java.util.Arrays.fill(out, v[0]);
        return out;
    }
}
