package io.quantcal.kernels.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.GemmForward;
import io.quantcal.kernels.onnx.Graphs;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import onnx.Onnx.ModelProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * Times the ND4J single-layer forward ({@link ConvForward}, {@link GemmForward}) against ONNX Runtime
 * running the same single-node model on the same input, with both libraries on the same thread count.
 *
 * <pre>
 * mvn -B -q -o -pl kernels compile exec:java -Dexec.mainClass=io.quantcal.kernels.bench.LayerForwardBenchmark \
 *     -Dexec.args="threads=2 reps=7 conv=32x64x56x56x64x3 dw=32x64x56x56x3 gemm=64x2048x1000"
 * </pre>
 *
 * Arguments (all optional, key=value): {@code threads} (default: available processors), {@code warmup}
 * (2), {@code reps} (at least 7 timed runs, more for short layers: about 0.5 s each), {@code conv=NxCxHxWxKxk} (dense k×k, stride 1, pad k/2), {@code dw=NxCxHxWxk}
 * (depthwise k×k, pad k/2), {@code gemm=NxKxM} (transB = 1, as a classifier head is exported); a size
 * of {@code none} skips that layer. Per layer, ND4J's runs come first, then ONNX Runtime's; the table
 * shows medians. ND4J times include allocating the output; ONNX Runtime's leave the output in native
 * memory (no copy into Java).
 */
public final class LayerForwardBenchmark {

    /** Short layers are repeated until about this much timed work, so their medians are not noise. */
    static final double MIN_TIMED_MS = 500;

    private LayerForwardBenchmark() {}

    record Result(String layer, String shape, double gflop, double nd4jMs, double ortMs, double relErr) {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        int threads = Integer.parseInt(a.getOrDefault("threads", "" + Runtime.getRuntime().availableProcessors()));
        int warmup = Integer.parseInt(a.getOrDefault("warmup", "2"));
        int reps = Integer.parseInt(a.getOrDefault("reps", "7"));
        setNd4jThreads(threads);

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        String build = NativeOpsHolder.getInstance().getDeviceNativeOps().buildInfo();
        System.out.printf(Locale.ROOT, "threads: %d (ND4J OpenMP %d, ONNX Runtime intra-op %d, inter-op 1)%n", threads,
                NativeOpsHolder.getInstance().getDeviceNativeOps().ompGetMaxThreads(), threads);
        System.out.printf(Locale.ROOT, "ND4J: oneDNN %s, BLAS %s; ONNX Runtime %s; warm-up %d, then median of >= %d runs"
                        + " and >= %.1f s per library and layer%n",
                build.contains("HAVE_ONEDNN") ? "yes" : "no",
                Nd4j.getExecutioner().getEnvironmentInformation().get("blas.vendor"), env.getVersion(), warmup, reps,
                MIN_TIMED_MS / 1e3);

        List<Result> results = new ArrayList<>();
        String conv = a.getOrDefault("conv", "32x64x56x56x64x3");
        if (!conv.equals("none")) {
            long[] s = dims("conv", conv, 6);
            results.add(conv(env, threads, warmup, reps, "conv " + s[5] + "x" + s[5], s[0], s[1], s[2], s[3], s[4], s[5], 1));
        }
        String dw = a.getOrDefault("dw", "32x64x56x56x3");
        if (!dw.equals("none")) {
            long[] s = dims("dw", dw, 5);
            results.add(conv(env, threads, warmup, reps, "depthwise " + s[4] + "x" + s[4], s[0], s[1], s[2], s[3], s[1], s[4], (int) s[1]));
        }
        String gemm = a.getOrDefault("gemm", "64x2048x1000");
        if (!gemm.equals("none")) {
            long[] s = dims("gemm", gemm, 3);
            results.add(gemm(env, threads, warmup, reps, s[0], s[1], s[2]));
        }
        print(results);
    }

    static Result conv(OrtEnvironment env, int threads, int warmup, int reps, String name,
                       long n, long c, long h, long w, long k, long ks, int group) throws OrtException {
        ConvSpec spec = ConvSpec.of(1, ks / 2, 1, group);
        INDArray x = random(1, n, c, h, w);
        INDArray wt = random(2, k, c / group, ks, ks);
        INDArray b = random(3, k);
        long[] ys = ConvForward.outputShape(x.shape(), wt.shape(), spec);
        double gflop = 2.0 * ys[0] * ys[1] * ys[2] * ys[3] * (c / group) * ks * ks / 1e9;
        Map<String, Object> attrs = new LinkedHashMap<>();
        attrs.put("kernel_shape", new long[] {ks, ks});
        attrs.put("pads", spec.pads());
        attrs.put("group", (long) group);
        ModelProto model = Graphs.model(13,
                List.of(Graphs.node("Conv", "conv", List.of("x", "w", "b"), List.of("y"), attrs)),
                List.of(tensor("w", wt), tensor("b", b)), List.of(Graphs.floatValue("x", x.shape())),
                List.of(unshaped("y")));
        return compare(env, threads, warmup, reps, name, n + "x" + c + "x" + h + "x" + w + " -> " + k, gflop, model, x,
                () -> ConvForward.conv2d(x, wt, b, spec));
    }

    static Result gemm(OrtEnvironment env, int threads, int warmup, int reps, long n, long k, long m) throws OrtException {
        INDArray x = random(4, n, k);
        INDArray wt = random(5, m, k);
        INDArray b = random(6, m);
        ModelProto model = Graphs.model(13,
                List.of(Graphs.node("Gemm", "gemm", List.of("x", "w", "b"), List.of("y"), Map.of("transB", 1L))),
                List.of(tensor("w", wt), tensor("b", b)), List.of(Graphs.floatValue("x", n, k)), List.of(unshaped("y")));
        return compare(env, threads, warmup, reps, "gemm transB", n + "x" + k + " -> " + m, 2.0 * n * k * m / 1e9, model, x,
                () -> GemmForward.gemm(x, wt, b, true));
    }

    static Result compare(OrtEnvironment env, int threads, int warmup, int reps, String name, String shape, double gflop,
                          ModelProto model, INDArray x, Supplier<INDArray> nd4j) throws OrtException {
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setIntraOpNumThreads(threads);
            so.setInterOpNumThreads(1);
            so.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            try (OrtSession session = env.createSession(model.toByteArray(), so);
                 OnnxTensor in = OnnxTensor.createTensor(env, FloatBuffer.wrap(floats(x)), x.shape())) {
                Map<String, OnnxTensor> feed = Map.of("x", in);
                double relErr;
                try (OrtSession.Result r = session.run(feed)) {
                    OnnxTensor y = (OnnxTensor) r.get(0);
                    relErr = relativeError(nd4j.get(), y.getFloatBuffer());
                }
                // Blocks, not interleaved runs: each library's idle threads spin-wait for a while after a call
                // (OpenMP, ORT's intra-op pool) and would steal the other's cores on a small machine.
                double[] tn = time(warmup, reps, nd4j::get);
                double[] to = time(warmup, reps, () -> {
                    try (OrtSession.Result r = session.run(feed)) {
                        return r.size();
                    } catch (OrtException e) {
                        throw new IllegalStateException(e);
                    }
                });
                return new Result(name, shape, gflop, median(tn), median(to), relErr);
            }
        }
    }

    /** Per-run milliseconds: {@code warmup} untimed runs, then at least {@code reps} and about half a second. */
    static double[] time(int warmup, int reps, Supplier<?> f) {
        double last = 0;
        for (int i = 0; i < warmup; i++) {
            long t0 = System.nanoTime();
            f.get();
            last = (System.nanoTime() - t0) / 1e6;
        }
        int runs = Math.max(reps, Math.min(200, (int) (MIN_TIMED_MS / Math.max(last, 1e-3))));
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            f.get();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        return t;
    }

    static void print(List<Result> results) {
        String fmt = "%-14s %-26s %7s %11s %11s %11s %11s %8s %9s%n";
        System.out.printf(Locale.ROOT, fmt, "layer", "shape", "GFLOP", "ND4J ms", "ORT ms", "ND4J GF/s", "ORT GF/s",
                "ND4J/ORT", "max rel");
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "%-14s %-26s %7.3f %11.2f %11.2f %11.1f %11.1f %8.2f %9.1e%n", r.layer(),
                    r.shape(), r.gflop(), r.nd4jMs(), r.ortMs(), r.gflop() / r.nd4jMs() * 1e3,
                    r.gflop() / r.ortMs() * 1e3, (r.gflop() / r.nd4jMs()) / (r.gflop() / r.ortMs()), r.relErr());
        }
        System.out.println("ND4J/ORT = ND4J GFLOP/s divided by ORT GFLOP/s (above 1: ND4J faster); max rel = "
                + "max |ND4J - ORT| / max |ORT| of the outputs");
    }

    /** ND4J's OpenMP pool (oneDNN and libnd4j loops), its own thread limits, and OpenBLAS. */
    static void setNd4jThreads(int threads) {
        Nd4j.getExecutioner(); // loads the backend, which NativeOpsHolder reads its configuration from
        NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
        Nd4j.getEnvironment().setMaxThreads(threads);
        Nd4j.getEnvironment().setMaxMasterThreads(threads);
        Nd4j.factory().blas().setMaxThreads(threads);
    }

    static double relativeError(INDArray nd4j, FloatBuffer ort) {
        float[] a = floats(nd4j);
        double diff = 0, ref = 0;
        for (int i = 0; i < a.length; i++) {
            float o = ort.get(i);
            diff = Math.max(diff, Math.abs(a[i] - o));
            ref = Math.max(ref, Math.abs(o));
        }
        return ref == 0 ? diff : diff / ref;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static INDArray random(long seed, long... shape) {
        Random r = new Random(seed);
        long len = 1;
        for (long d : shape) len *= d;
        float[] v = new float[Math.toIntExact(len)];
        for (int i = 0; i < v.length; i++) v[i] = 2 * r.nextFloat() - 1;
        return Nd4j.create(v, shape, 'c');
    }

    static float[] floats(INDArray a) {
        return a.dup('c').data().asFloat();
    }

    static TensorProto tensor(String name, INDArray a) {
        return Graphs.floatTensor(name, floats(a), a.shape());
    }

    static ValueInfoProto unshaped(String name) {
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT.getNumber()))).build();
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String arg : args) {
            for (String kv : arg.trim().split("\\s+")) {
                if (kv.isEmpty()) continue;
                int eq = kv.indexOf('=');
                if (eq < 1) throw new IllegalArgumentException("argument '" + kv + "' is not key=value");
                String key = kv.substring(0, eq);
                if (!List.of("threads", "warmup", "reps", "conv", "dw", "gemm").contains(key)) {
                    throw new IllegalArgumentException("unknown argument '" + key
                            + "'; expected threads, warmup, reps, conv=NxCxHxWxKxk, dw=NxCxHxWxk, gemm=NxKxM");
                }
                m.put(key, kv.substring(eq + 1));
            }
        }
        return m;
    }

    static long[] dims(String key, String value, int count) {
        String[] p = value.toLowerCase(Locale.ROOT).split("x");
        if (p.length != count) {
            throw new IllegalArgumentException(key + "=" + value + ": expected " + count + " sizes separated by 'x'");
        }
        long[] d = new long[count];
        for (int i = 0; i < count; i++) d[i] = Long.parseLong(p[i]);
        return d;
    }
}
