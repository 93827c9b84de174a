package io.quantcal.job.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.quantcal.job.QuantcalJob;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.runtime.SessionCache;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.sql.SparkSession;

/**
 * Inference speed of the exported QDQ models against their FP32 model, side by side in one run (the best of the runs
 * is printed beside the median: on a machine shared with other work it is the steadier figure): for each model,
 * quantcal calibrates and exports once per variant (W8A8 per-channel, minmax): the ort profile with int8 weights, the
 * ort profile with uint8 weights ({@code export.ort-weight-type = uint8}, exact on CPUs without VNNI) and the tensorrt
 * profile; then ONNX Runtime's Java
 * API runs the FP32 model and each profile's {@code model_qdq.onnx} on the same batch (CPU provider, all graph
 * optimizations, intra-op threads as given) and the median time per batch and the speed-up over FP32 are printed.
 * With {@code profile=true} it then runs each model once more under ONNX Runtime's profiler and prints the kernels' time
 * per op type and its four slowest nodes (where the integer model's time goes against the float one's).
 * Usage: QdqSpeedBenchmark [batch=32] [threads=2] [reps=40] [keep=false] [profile=false] [variants=ort,ort-u8,tensorrt] [key=value ...] [MODEL.onnx ...] (default: the
 * bundled models; overrides of conf/example.conf, e.g. the zoo's 3-channel 32x32 preprocess). The exported models go
 * to a temporary directory, removed at the end unless {@code keep=true} (then its path is printed).
 */
public final class QdqSpeedBenchmark {

    public static void main(String[] args) throws Exception {
        int batch = 32, threads = 2, reps = 40;
        boolean keep = false, profile = false;
        List<String> only = List.of();
        List<String> models = new ArrayList<>();
        List<String> overrides = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("batch=")) batch = Integer.parseInt(a.substring(6));
            else if (a.startsWith("threads=")) threads = Integer.parseInt(a.substring(8));
            else if (a.startsWith("reps=")) reps = Integer.parseInt(a.substring(5));
            else if (a.startsWith("keep=")) keep = Boolean.parseBoolean(a.substring(5));
            else if (a.startsWith("profile=")) profile = Boolean.parseBoolean(a.substring(8));
            else if (a.startsWith("variants=")) only = List.of(a.substring(9).split(","));
            else if (a.contains("=")) overrides.add(a);
            else models.add(a);
        }
        if (models.isEmpty()) {
            models = List.of("examples/fashion-mnist/models/resnet_small.onnx",
                    "examples/fashion-mnist/models/mobilenet_small.onnx");
        }
        Path out = BenchOutput.create("qdq");
        try {
            run(out, models, overrides, batch, threads, reps, only, profile);
        } finally {
            if (keep) System.out.println("the exported models are kept in " + out);
            else BenchOutput.remove(out);
        }
    }

    private static void run(Path out, List<String> models, List<String> overrides, int batch, int threads, int reps,
                            List<String> only, boolean profile) throws Exception {
        String conf = "conf/example.conf";
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        // variant → its export keys: the ort profile with int8 weights (default) and with uint8 ones, tensorrt
        Map<String, List<String>> variants = new LinkedHashMap<>();
        variants.put("ort", List.of("export.profile=ort"));
        variants.put("ort-u8", List.of("export.profile=ort", "export.ort-weight-type=uint8"));
        variants.put("tensorrt", List.of("export.profile=tensorrt"));
        if (!only.isEmpty()) {
            for (String v : only) {
                if (!variants.containsKey(v)) throw new IllegalArgumentException("variants=: no variant " + v + "; they are " + variants.keySet());
            }
            variants.keySet().retainAll(only);
        }
        Map<String, Map<String, Path>> qdq = new LinkedHashMap<>();
        // open spatial dimensions of an image input (a detector's [N, 3, ?, ?]) are timed at the preprocess size
        QuantcalConfig.Preprocess pp = QuantcalConfig.parse(conf, Files.readString(Path.of(conf)), overrides).preprocess();
        long[] hw = {pp.height(), pp.width()};
        SparkSession spark = LocalSpark.start(2);
        try {
            for (String model : models) {
                Map<String, Path> byProfile = new LinkedHashMap<>();
                for (var v : variants.entrySet()) {
                    String p = v.getKey();
                    Path dir = out.resolve(Path.of(model).getFileName() + "-" + p);
                    List<String> o = new ArrayList<>(List.of("model=" + model,
                            "pipeline=[fold-bn,calibrate,export]", "calibration.limit=256", "output.path=" + dir.toUri()));
                    o.addAll(v.getValue());
                    o.addAll(overrides);
                    QuantcalConfig cfg = QuantcalConfig.parse(conf, Files.readString(Path.of(conf)), o);
                    QuantcalJob.run(spark, cfg, quiet);
                    byProfile.put(p, dir.resolve("model_qdq.onnx"));
                }
                qdq.put(model, byProfile);
            }
        } finally {
            spark.stop();
            SessionCache.clear();
        }

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        System.out.printf("ONNX Runtime %s CPU, batch %d, intra-op threads %d, all graph optimizations, %d runs after 5 warm-up, better of 2 rounds%n",
                env.getVersion(), batch, threads, reps);
        System.out.println(io.quantcal.kernels.onnx.CpuFeatures.u8s8Saturates()
                ? "this CPU: AVX2 without VNNI, ONNX Runtime's u8*s8 kernels saturate (int8-weight models inexact; ort-u8 exact)"
                : "this CPU: u8*s8 kernels exact (VNNI, ARM or no AVX2)");
        System.out.printf("%-24s %-9s %10s %10s %9s %9s   %s%n", "model", "variant", "median ms", "best ms", "speed-up",
                "(best)", "ops after ORT's optimization");
        for (var e : qdq.entrySet()) {
            String name = Path.of(e.getKey()).getFileName().toString();
            // two rounds over FP32 and every variant (A B C A B C), each variant's better round kept: the first model
            // timed after Spark stops or after another session's threads no longer runs at a disadvantage
            Map<String, double[]> best = new LinkedHashMap<>();
            for (int round = 0; round < 2; round++) {
                keepBetter(best, "fp32", time(env, Path.of(e.getKey()), batch, hw, threads, reps, null));
                for (var q : e.getValue().entrySet()) {
                    Path optimized = q.getValue().resolveSibling("model_qdq.ort-optimized.onnx");
                    keepBetter(best, q.getKey(), time(env, q.getValue(), batch, hw, threads, reps, round == 0 ? optimized : null));
                }
            }
            double[] fp = best.get("fp32");
            System.out.printf("%-24s %-9s %10.3f %10.3f %9s %9s%n", name, "fp32", fp[0], fp[1], "1.00x", "1.00x");
            for (var q : e.getValue().entrySet()) {
                double[] t = best.get(q.getKey());
                System.out.printf("%-24s %-9s %10.3f %10.3f %8.2fx %8.2fx   %s%n", name, q.getKey(), t[0], t[1], fp[0] / t[0],
                        fp[1] / t[1], fusedOps(q.getValue().resolveSibling("model_qdq.ort-optimized.onnx")));
            }
            if (profile) {
                // where each model's time goes, by ONNX Runtime's own profiler: the kernels' time per op type
                Path dir = out.resolve(name + "-profile");
                Files.createDirectories(dir);
                System.out.printf("  ONNX Runtime's profiler, %d runs each: kernel ms per batch by op type (the node events after the "
                        + "warm-up runs, summed)%s%n", reps, threads > 1 ? "; with " + threads + " threads a node's time includes "
                        + "waiting for the thread pool, so the sums can exceed the wall time (threads=1 gives the kernels' own)" : "");
                Map<String, Path> all = new LinkedHashMap<>();
                all.put("fp32", Path.of(e.getKey()));
                all.putAll(e.getValue());
                for (var v : all.entrySet()) {
                    Map<String, Double> byNode = profile(env, v.getValue(), batch, hw, threads, reps, dir.resolve(v.getKey()));
                    Map<String, Double> byOp = new java.util.TreeMap<>();
                    byNode.forEach((k, ms) -> byOp.merge(k.substring(k.lastIndexOf(' ') + 1), ms, Double::sum));
                    System.out.printf("  %-9s %s%n", v.getKey(), byOpLine(byOp));
                    List<Map.Entry<String, Double>> top = new ArrayList<>(byNode.entrySet());
                    top.sort(Map.Entry.<String, Double>comparingByValue().reversed());
                    StringBuilder b = new StringBuilder();
                    for (var t : top.subList(0, Math.min(4, top.size()))) {
                        b.append(String.format(java.util.Locale.ROOT, " %s %.3f,", t.getKey(), t.getValue()));
                    }
                    b.setLength(b.length() - 1);
                    System.out.printf("  %-9s largest nodes:%s%n", "", b);
                }
            }
        }
    }

    /** "total 1.234: QLinearConv 0.800, QLinearAdd 0.200, ..." (ms, largest first, the ops under 2% summed as "other"). */
    static String byOpLine(Map<String, Double> byOp) {
        double total = byOp.values().stream().mapToDouble(Double::doubleValue).sum();
        StringBuilder b = new StringBuilder(String.format(java.util.Locale.ROOT, "total %.3f:", total));
        double other = 0;
        List<Map.Entry<String, Double>> sorted = new ArrayList<>(byOp.entrySet());
        sorted.sort(Map.Entry.<String, Double>comparingByValue().reversed());
        for (var o : sorted) {
            if (o.getValue() < 0.02 * total) other += o.getValue();
            else b.append(String.format(java.util.Locale.ROOT, " %s %.3f,", o.getKey(), o.getValue()));
        }
        if (other > 0) b.append(String.format(java.util.Locale.ROOT, " other %.3f,", other));
        b.setLength(b.length() - 1);
        return b.toString();
    }

    /**
     * ONNX Runtime's profiler over {@code reps} runs after 5 warm-up runs (the same session options, batch and input as
     * {@link #time}): kernel milliseconds per timed run by node ("name op_type"), from the profile's node events
     * ({@code *_kernel_time}) after the warm-up runs. The profile is written under {@code prefix} and read back.
     */
    static Map<String, Double> profile(OrtEnvironment env, Path model, int batch, long[] hw, int threads, int reps, Path prefix)
            throws Exception {
        Path file = Path.of(run(env, model, batch, hw, threads, reps, null, prefix).path());
        com.fasterxml.jackson.databind.JsonNode events = new com.fasterxml.jackson.databind.ObjectMapper().readTree(file.toFile());
        // the runs' start times: the node events before the first timed run (the 5 warm-up runs) are left out
        List<Long> runs = new ArrayList<>();
        for (com.fasterxml.jackson.databind.JsonNode ev : events) {
            if ("Session".equals(ev.path("cat").asText()) && "model_run".equals(ev.path("name").asText())) runs.add(ev.path("ts").asLong());
        }
        java.util.Collections.sort(runs);
        if (runs.size() != reps + 5) {
            throw new IllegalStateException(file + ": " + runs.size() + " model_run events, expected " + (reps + 5));
        }
        long from = runs.get(5);
        Map<String, Double> byNode = new LinkedHashMap<>();
        for (com.fasterxml.jackson.databind.JsonNode ev : events) {
            String name = ev.path("name").asText();
            if (!"Node".equals(ev.path("cat").asText()) || !name.endsWith("_kernel_time") || ev.path("ts").asLong() < from) continue;
            String node = name.substring(0, name.length() - "_kernel_time".length()) + " " + ev.path("args").path("op_name").asText("?");
            byNode.merge(node, ev.path("dur").asDouble() / 1000.0 / reps, Double::sum);
        }
        return byNode;
    }

    /** Keeps the round with the lower median (its best beside it). */
    private static void keepBetter(Map<String, double[]> best, String variant, double[] t) {
        best.merge(variant, t, (a, b) -> b[0] < a[0] ? b : a);
    }

    /**
     * [median, best] ms per batch of {@code reps} runs after 5 warm-up runs; writes ORT's optimized graph if asked. A
     * rank-4 input's open height and width take {@code hw}; any other open dimension but the batch is an error.
     */
    static double[] time(OrtEnvironment env, Path model, int batch, long[] hw, int threads, int reps, Path optimized)
            throws Exception {
        return run(env, model, batch, hw, threads, reps, optimized, null).ms();
    }

    /** [median, best] ms per batch, and the profile's file when one was asked for. */
    record Timed(double[] ms, String path) {}

    /**
     * {@code reps} timed runs after 5 warm-up runs on one batch of random input; writes ORT's optimized graph if
     * {@code optimized} is given, profiles the timed runs into a file under {@code profilePrefix} if that is given. A
     * rank-4 input's open height and width take {@code hw}; any other open dimension but the batch is an error.
     */
    static Timed run(OrtEnvironment env, Path model, int batch, long[] hw, int threads, int reps, Path optimized,
                     Path profilePrefix) throws Exception {
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(threads);
            o.setInterOpNumThreads(1);
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            if (optimized != null) o.setOptimizedModelFilePath(optimized.toString());
            if (profilePrefix != null) o.enableProfiling(profilePrefix.toString());
            try (OrtSession s = env.createSession(model.toString(), o)) {
                var info = (ai.onnxruntime.TensorInfo) s.getInputInfo().values().iterator().next().getInfo();
                long[] shape = info.getShape().clone();
                // an image input without a batch dimension ([C, H, W] fixed: torchvision's detection models) runs
                // one image per run, whatever the batch
                boolean unbatched = shape.length == 3 && Arrays.stream(shape).allMatch(d -> d > 0);
                if (!unbatched) shape[0] = batch;
                for (int d = 1; !unbatched && d < shape.length; d++) {
                    if (shape[d] >= 0) continue;
                    if (shape.length != 4 || d < 2) {
                        throw new IllegalArgumentException(model + ": input dimension " + d + " of " + Arrays.toString(
                                info.getShape()) + " is open; the qdq benchmark fills only an image's height and width");
                    }
                    shape[d] = hw[d - 2];
                }
                long n = 1;
                for (long d : shape) n *= d;
                SplittableRandom r = new SplittableRandom(7);
                OnnxTensor feed;
                if (info.type == ai.onnxruntime.OnnxJavaType.UINT8) {
                    // a model that takes 8-bit pixels: random pixels
                    byte[] x = new byte[(int) n];
                    for (int i = 0; i < x.length; i++) x[i] = (byte) r.nextInt(256);
                    feed = OnnxTensor.createTensor(env, java.nio.ByteBuffer.wrap(x), shape, ai.onnxruntime.OnnxJavaType.UINT8);
                } else {
                    float[] x = new float[(int) n];
                    for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 0.8);
                    feed = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), shape);
                }
                String input = s.getInputNames().iterator().next();
                try (OnnxTensor t = feed) {
                    for (int i = 0; i < 5; i++) s.run(Map.of(input, t)).close();
                    // a profiled session records its warm-up runs too: profile() counts the runs after them
                    double[] ms = new double[reps];
                    for (int i = 0; i < reps; i++) {
                        long t0 = System.nanoTime();
                        s.run(Map.of(input, t)).close();
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                    Arrays.sort(ms);
                    return new Timed(new double[] {ms[reps / 2], ms[0]}, profilePrefix == null ? null : s.endProfiling());
                }
            }
        }
    }

    /** Counts of the integer ops in ORT's optimized graph (QLinearConv, QGemm, ...), and the float Convs left. */
    static String fusedOps(Path optimized) throws Exception {
        onnx.Onnx.ModelProto m = onnx.Onnx.ModelProto.parseFrom(Files.readAllBytes(optimized));
        Map<String, Integer> count = new java.util.TreeMap<>();
        for (onnx.Onnx.NodeProto n : m.getGraph().getNodeList()) {
            String op = (n.getDomain().isEmpty() ? "" : n.getDomain() + ":") + n.getOpType();
            if (op.contains("QLinear") || op.contains("QGemm") || op.contains("Integer") || op.endsWith("Conv")
                    || op.endsWith("Gemm") || op.endsWith("MatMul") || op.endsWith("QuantizeLinear") || op.endsWith("Transpose")
                    || op.endsWith("ReorderInput") || op.endsWith("ReorderOutput") || op.equals("Pad")) {
                count.merge(op, 1, Integer::sum);
            }
        }
        return count.toString();
    }
}
