package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * Small models built with {@link Graphs} and seeded random weights, plus plain-loop references of the
 * layers (conv, gemm, matmul) accumulated in double, for tests here and in other modules.
 */
public final class TestModels {

    private TestModels() {}

    /**
     * Operator counts, "domain:op", of the graph ONNX Runtime runs after all its optimizations (layout rewrites
     * included), written to {@code file}.
     */
    public static Map<String, Long> optimizedOps(OnnxModel m, java.nio.file.Path file) throws Exception {
        try (ai.onnxruntime.OrtSession.SessionOptions o = new ai.onnxruntime.OrtSession.SessionOptions()) {
            o.setOptimizationLevel(ai.onnxruntime.OrtSession.SessionOptions.OptLevel.ALL_OPT);
            o.setIntraOpNumThreads(1);
            o.setOptimizedModelFilePath(file.toString());
            ai.onnxruntime.OrtEnvironment.getEnvironment().createSession(m.toByteArray(), o).close();
        }
        Map<String, Long> ops = new java.util.TreeMap<>();
        for (NodeProto n : ModelProto.parseFrom(java.nio.file.Files.readAllBytes(file)).getGraph().getNodeList()) {
            ops.merge(n.getDomain() + ":" + n.getOpType(), 1L, Long::sum);
        }
        return ops;
    }

    public static float[] gaussian(Random r, int n, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * std);
        return a;
    }

    public static float[] uniform(Random r, int n, double lo, double hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        return a;
    }

    /** The arrays one after the other. */
    public static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) n += p.length;
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    public static int count(long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return (int) n;
    }

    /** A mutable list of nodes and initializers that ends in a model. */
    public static final class Builder {
        final Random random;
        final List<NodeProto> nodes = new ArrayList<>();
        final List<TensorProto> initializers = new ArrayList<>();
        final Map<String, long[]> shapes = new HashMap<>();

        public Builder(long seed) {
            this.random = new Random(seed);
        }

        public Random random() {
            return random;
        }

        public Builder node(NodeProto n) {
            nodes.add(n);
            return this;
        }

        public String init(String name, float[] data, long... dims) {
            initializers.add(Graphs.floatTensor(name, data, dims));
            return name;
        }

        public String randomInit(String name, double std, long... dims) {
            return init(name, gaussian(random, count(dims), std), dims);
        }

        /** Conv with random weight [cOut, cIn/group, k, k] (He-like scale) and optionally a random bias. */
        public Builder conv(String name, String x, String y, int cIn, int cOut, int k, int group, int stride, int pad,
                            boolean bias) {
            String w = randomInit(name + ".weight", Math.sqrt(2.0 / (cIn / group * k * k)), cOut, cIn / group, k, k);
            List<String> in = new ArrayList<>(List.of(x, w));
            if (bias) in.add(randomInit(name + ".bias", 0.1, cOut));
            return node(Graphs.node("Conv", name, in, List.of(y), Map.of("group", (long) group,
                    "kernel_shape", new long[] {k, k}, "strides", new long[] {stride, stride},
                    "pads", new long[] {pad, pad, pad, pad}, "dilations", new long[] {1, 1})));
        }

        /** BatchNormalization with random γ (around 1), β, mean and positive var. */
        public Builder batchNorm(String name, String x, String y, int c) {
            String g = init(name + ".weight", uniform(random, c, 0.5, 1.5), c);
            String b = randomInit(name + ".bias", 0.2, c);
            String m = randomInit(name + ".running_mean", 0.3, c);
            String v = init(name + ".running_var", uniform(random, c, 0.2, 2.0), c);
            return node(Graphs.node("BatchNormalization", name, List.of(x, g, b, m, v), List.of(y),
                    Map.of("epsilon", 1e-5)));
        }

        public Builder relu(String name, String x, String y) {
            return node(Graphs.node("Relu", name, List.of(x), List.of(y)));
        }

        /** Clip(min, max) with min and max as initializers (opset ≥ 11). */
        public Builder clip(String name, String x, String y, float lo, float hi) {
            String l = init(name + ".min", new float[] {lo});
            String h = init(name + ".max", new float[] {hi});
            return node(Graphs.node("Clip", name, List.of(x, l, h), List.of(y)));
        }

        public Builder gemm(String name, String a, String y, int k, int n, boolean transB, boolean bias) {
            long[] dims = transB ? new long[] {n, k} : new long[] {k, n};
            String w = randomInit(name + ".weight", Math.sqrt(1.0 / k), dims);
            List<String> in = new ArrayList<>(List.of(a, w));
            if (bias) in.add(randomInit(name + ".bias", 0.1, n));
            return node(Graphs.node("Gemm", name, in, List.of(y), Map.of("transB", transB ? 1L : 0L)));
        }

        /** An image classifier's head on {@code x} [N, c, H, W]: GlobalAveragePool → Flatten → fc (Gemm, bias) → "logits". */
        public Builder classifier(String x, int c, int classes) {
            node(Graphs.node("GlobalAveragePool", "gap", List.of(x), List.of("g")));
            node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
            return gemm("fc", "f", "logits", c, classes, true, true);
        }

        /** x → SiLU (Sigmoid, Mul) → MaxPool 2×2 → GlobalAveragePool → g: a network's end before its classifier. */
        public Builder siluMaxPoolGap(String x, String g) {
            node(Graphs.node("Sigmoid", "sig", List.of(x), List.of(x + "_sig")));
            node(Graphs.node("Mul", "silu", List.of(x, x + "_sig"), List.of(x + "_silu")));
            node(Graphs.node("MaxPool", "maxpool", List.of(x + "_silu"), List.of(x + "_pool"),
                    Map.of("kernel_shape", new long[] {2, 2}, "strides", new long[] {2, 2})));
            return node(Graphs.node("GlobalAveragePool", "gap", List.of(x + "_pool"), List.of(g)));
        }

        public Builder matMul(String name, String a, String y, int k, int n) {
            String w = randomInit(name + ".weight", Math.sqrt(1.0 / k), k, n);
            return node(Graphs.node("MatMul", name, List.of(a, w), List.of(y)));
        }

        public ModelProto model(long opset, List<ValueInfoProto> inputs, List<ValueInfoProto> outputs) {
            return Graphs.model(opset, nodes, initializers, inputs, outputs);
        }

        public OnnxModel build(long opset, List<ValueInfoProto> inputs, List<ValueInfoProto> outputs) {
            return OnnxModel.parse("test-model.onnx", model(opset, inputs, outputs).toByteArray(),
                    ExternalDataResolver.none());
        }
    }

    /**
     * Conv → BN → Relu, depthwise Conv → BN → Clip(0, 6), pointwise Conv (no bias) → BN → Relu with a
     * residual Add, GlobalAveragePool, Flatten, Gemm (transB 1) → Relu → MatMul: input {@code input}
     * [N, 3, 8, 8], output {@code logits} [N, 5].
     */
    public static OnnxModel smallCnn(long seed) {
        Builder b = new Builder(seed);
        b.conv("conv1", "input", "c1", 3, 8, 3, 1, 1, 1, true).batchNorm("bn1", "c1", "b1", 8).relu("relu1", "b1", "r1");
        b.conv("dw", "r1", "c2", 8, 8, 3, 8, 1, 1, true).batchNorm("bn2", "c2", "b2", 8).clip("clip2", "b2", "r2", 0, 6);
        b.conv("pw", "r2", "c3", 8, 8, 1, 1, 1, 0, false).batchNorm("bn3", "c3", "b3", 8).relu("relu3", "b3", "r3");
        b.node(Graphs.node("Add", "add", List.of("r3", "r1"), List.of("s")));
        b.node(Graphs.node("GlobalAveragePool", "gap", List.of("s"), List.of("g")));
        b.node(Graphs.node("Flatten", "flatten", List.of("g"), List.of("f"), Map.of("axis", 1L)));
        b.gemm("fc1", "f", "h", 8, 16, true, true).relu("relu4", "h", "hr");
        b.matMul("fc2", "hr", "logits", 16, 5);
        return b.build(13, List.of(Graphs.floatValue("input", -1, 3, 8, 8)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    // ------------------------------------------------------------------ references

    /**
     * Conv of x [N, C_in, H, W] with w [C_out, C_in/group, kH, kW] (bias may be null), pads
     * [top, left, bottom, right]; returns y [N, C_out, H_out, W_out] row-major, accumulated in double.
     */
    public static float[] conv2d(float[] x, long[] xs, float[] w, long[] ws, float[] bias, int group,
                                 long[] strides, long[] pads, long[] dilations, long[] yShapeOut) {
        int n = (int) xs[0], cin = (int) xs[1], h = (int) xs[2], wd = (int) xs[3];
        int cout = (int) ws[0], cpg = (int) ws[1], kh = (int) ws[2], kw = (int) ws[3];
        int sh = (int) strides[0], sw = (int) strides[1], dh = (int) dilations[0], dw = (int) dilations[1];
        int pt = (int) pads[0], pl = (int) pads[1], pb = (int) pads[2], pr = (int) pads[3];
        int ho = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
        int wo = (wd + pl + pr - dw * (kw - 1) - 1) / sw + 1;
        int opg = cout / group;
        if (cpg * group != cin) throw new IllegalArgumentException("channels");
        float[] y = new float[n * cout * ho * wo];
        for (int b = 0; b < n; b++) {
            for (int co = 0; co < cout; co++) {
                int g = co / opg;
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double acc = bias == null ? 0 : bias[co];
                        for (int ci = 0; ci < cpg; ci++) {
                            int c = g * cpg + ci;
                            for (int ky = 0; ky < kh; ky++) {
                                int iy = oy * sh - pt + ky * dh;
                                if (iy < 0 || iy >= h) continue;
                                for (int kx = 0; kx < kw; kx++) {
                                    int ix = ox * sw - pl + kx * dw;
                                    if (ix < 0 || ix >= wd) continue;
                                    acc += (double) x[((b * cin + c) * h + iy) * wd + ix]
                                            * w[((co * cpg + ci) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        y[((b * cout + co) * ho + oy) * wo + ox] = (float) acc;
                    }
                }
            }
        }
        if (yShapeOut != null) {
            yShapeOut[0] = n;
            yShapeOut[1] = cout;
            yShapeOut[2] = ho;
            yShapeOut[3] = wo;
        }
        return y;
    }

    /** a [M, K] × B (stored [K, N], or [N, K] when transB) + bias[N] (nullable), in double. */
    public static float[] gemm(float[] a, int m, int k, float[] bw, int nOut, boolean transB, float[] bias) {
        float[] y = new float[m * nOut];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < nOut; j++) {
                double acc = bias == null ? 0 : bias[j];
                for (int p = 0; p < k; p++) {
                    acc += (double) a[i * k + p] * (transB ? bw[j * k + p] : bw[p * nOut + j]);
                }
                y[i * nOut + j] = (float) acc;
            }
        }
        return y;
    }

    public static float[] relu(float[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) y[i] = Math.max(0f, x[i]);
        return y;
    }

    /** max |a − b| / max(max |b|, 1e-12): the error relative to the reference's scale. */
    public static double relativeError(float[] actual, float[] expected) {
        if (actual.length != expected.length) throw new AssertionError(actual.length + " values, expected " + expected.length);
        double maxDiff = 0, maxRef = 1e-12;
        for (int i = 0; i < actual.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((double) actual[i] - expected[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return maxDiff / maxRef;
    }

    public static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }

    /**
     * A model whose If reads main-graph tensors from inside its branches (as Silero VAD's convolutions read their
     * weights):
     * x [N, c, hw, hw] → conv1 → relu1 → r; w2i = Identity(w2); cond = max(x) > −1e9 (always true);
     * If(cond): then Conv(r, w2i) → Relu, else Identity(r) → y; GAP → Flatten → fc → logits [N, 5].
     */
    public static OnnxModel branchReadingMainGraph(int c, int hw) {
        TestModels.Builder b = new TestModels.Builder(11);
        b.conv("conv1", "x", "c1", c, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r");
        b.randomInit("w2", 0.2, 8, 8, 3, 3);
        b.node(Graphs.node("Identity", "w2_id", List.of("w2"), List.of("w2i")));
        b.node(Graphs.node("ReduceMax", "rmax", List.of("x"), List.of("mx"), Map.of("keepdims", 0L)));
        b.node(Graphs.node("Constant", "lo", List.of(), List.of("lo"),
                Map.of("value", Graphs.floatTensor("lo", new float[] {-1e9f}))));
        b.node(Graphs.node("Greater", "gt", List.of("mx", "lo"), List.of("cond")));
        onnx.Onnx.GraphProto then = onnx.Onnx.GraphProto.newBuilder().setName("then")
                .addNode(Graphs.node("Conv", "sub_conv", List.of("r", "w2i"), List.of("t"),
                        Map.of("pads", new long[] {1, 1, 1, 1})))
                .addNode(Graphs.node("Relu", "sub_relu", List.of("t"), List.of("y_then")))
                .addOutput(Graphs.valueOfAnyShape("y_then", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        onnx.Onnx.GraphProto otherwise = onnx.Onnx.GraphProto.newBuilder().setName("else")
                .addNode(Graphs.node("Identity", "sub_id", List.of("r"), List.of("y_else")))
                .addOutput(Graphs.valueOfAnyShape("y_else", onnx.Onnx.TensorProto.DataType.FLOAT)).build();
        b.node(Graphs.node("If", "branch", List.of("cond"), List.of("y"),
                Map.of("then_branch", then, "else_branch", otherwise)));
        b.classifier("y", 8, 5);
        return b.build(13, List.of(Graphs.floatValue("x", -1, c, hw, hw)), List.of(Graphs.floatValue("logits", -1, 5)));
    }

    /**
     * {@link #branchReadingMainGraph} whose If decides on an int64 scalar input, as Silero VAD's does on its sample
     * rate: cond = Equal(sr, 16000); inputs x [N, c, hw, hw] and sr [].
     */
    public static OnnxModel branchOnInput(int c, int hw) {
        OnnxModel m = branchReadingMainGraph(c, hw);
        onnx.Onnx.GraphProto.Builder g = m.graph().toBuilder().clearNode();
        for (NodeProto n : m.nodes()) {
            if (n.getName().equals("gt")) {
                g.addNode(Graphs.node("Constant", "rate", List.of(), List.of("c16k"),
                        Map.of("value", Graphs.int64Tensor("c16k", new long[] {16000}))));
                g.addNode(Graphs.node("Equal", "is16k", List.of("sr", "c16k"), List.of("cond")));
            } else if (!n.getName().equals("rmax") && !n.getName().equals("lo")) {
                g.addNode(n);
            }
        }
        g.addInput(Graphs.value("sr", onnx.Onnx.TensorProto.DataType.INT64));
        return m.withGraph(g.build());
    }

    /**
     * A CRNN as torch.onnx writes one (sequence first): x [N, 1, 28, 28] → conv1 (4 channels, 3×3, pad 1) → relu1 →
     * Reshape [N, 112, 28] → Transpose → [28, N, 112] → {@code op} (LSTM, GRU or RNN, one direction, hidden 16, node
     * "rnn") → Y [28, 1, N, 16] → Squeeze → ReduceMean over time → fc (MatMul [16, 10]) → logits [N, 10].
     */
    public static OnnxModel recurrent(String op) {
        int gates = switch (op) {
            case "LSTM" -> 4;
            case "GRU" -> 3;
            case "RNN" -> 1;
            default -> throw new IllegalArgumentException(op);
        };
        TestModels.Builder b = new TestModels.Builder(17);
        b.conv("conv1", "x", "c1", 1, 4, 3, 1, 1, 1, true).relu("relu1", "c1", "r");
        b.initializers.add(Graphs.int64Tensor("shape", new long[] {0, 112, 28}, 3));
        b.node(Graphs.node("Reshape", "flat", List.of("r", "shape"), List.of("seq_nft")));
        b.node(Graphs.node("Transpose", "tnf", List.of("seq_nft"), List.of("seq"), Map.of("perm", new long[] {2, 0, 1})));
        int h = 16;
        b.randomInit("rnn.W", 0.1, 1, gates * h, 112);
        b.randomInit("rnn.R", 0.2, 1, gates * h, h);
        b.randomInit("rnn.B", 0.1, 1, 2L * gates * h);
        b.node(Graphs.node(op, "rnn", List.of("seq", "rnn.W", "rnn.R", "rnn.B"), List.of("y_seq"),
                Map.of("hidden_size", (long) h)));
        b.initializers.add(Graphs.int64Tensor("axis1", new long[] {1}, 1));
        b.node(Graphs.node("Squeeze", "sq", List.of("y_seq", "axis1"), List.of("y_tnh")));
        b.node(Graphs.node("ReduceMean", "time_mean", List.of("y_tnh"), List.of("feat"),
                Map.of("axes", new long[] {0}, "keepdims", 0L)));
        b.matMul("fc", "feat", "logits", h, 10);
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    /**
     * An image model that normalises its own 8-bit input, as TensorFlow's detection exports and models with built-in
     * preprocessing do: x uint8 [N, 28, 28, 1] (NHWC) → Cast → Div 255 → Transpose [0, 3, 1, 2] → "xt" → conv1 (8
     * channels, 3×3, pad 1) → relu1 → GAP → Flatten → fc → logits [N, 10]. With {@code uint8 = false} the same layers
     * read a float input "xt" [N, 1, 28, 28] directly (the model the uint8 one stands for, fed pixel / 255).
     */
    public static OnnxModel normalisesItsInput(boolean uint8) {
        TestModels.Builder b = new TestModels.Builder(23);
        String x = uint8 ? "x" : "xt";
        if (uint8) {
            b.node(Graphs.node("Cast", "cast", List.of("x"), List.of("xf"), Map.of("to", 1L)));
            b.init("k255", new float[] {255f});
            b.node(Graphs.node("Div", "div", List.of("xf", "k255"), List.of("xs")));
            b.node(Graphs.node("Transpose", "nchw", List.of("xs"), List.of("xt"), Map.of("perm", new long[] {0, 3, 1, 2})));
        }
        b.conv("conv1", "xt", "c1", 1, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r");
        b.classifier("r", 8, 10);
        var input = uint8 ? Graphs.value("x", onnx.Onnx.TensorProto.DataType.UINT8, -1, 28, 28, 1)
                : Graphs.floatValue(x, -1, 1, 28, 28);
        return b.build(13, List.of(input), List.of(Graphs.floatValue("logits", -1, 10)));
    }

    /**
     * A classifier with detector-like outputs: x [N, 1, 28, 28] → conv1 → relu1 → GAP → Flatten → fc → "logits"
     * [N, 10]; "kept" = the logits above 0.05 (Greater → NonZero "nz" → Transpose → GatherND: [K], K depends on the
     * data, as boxes after NonMaxSuppression do); "labels" = ArgMax(logits) int64 [N]; with "post_out" among the
     * outputs, a MatMul "post" [1, 4] on kept as [K, 1] gives it [K, 4]; "probs" = Softmax(logits). The graph outputs
     * are {@code outputs}, in that order.
     */
    public static OnnxModel dataDependentOutputs(String... outputs) {
        TestModels.Builder b = new TestModels.Builder(29);
        b.conv("conv1", "x", "c1", 1, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r");
        b.classifier("r", 8, 10);
        b.init("thr", new float[] {0.05f});
        b.node(Graphs.node("Greater", "gt", List.of("logits", "thr"), List.of("above")));
        b.node(Graphs.node("NonZero", "nz", List.of("above"), List.of("idx")));
        b.node(Graphs.node("Transpose", "idx_t", List.of("idx"), List.of("idx_rows"), Map.of("perm", new long[] {1, 0})));
        b.node(Graphs.node("GatherND", "gather", List.of("logits", "idx_rows"), List.of("kept")));
        b.node(Graphs.node("ArgMax", "argmax", List.of("logits"), List.of("labels"), Map.of("axis", 1L, "keepdims", 0L)));
        if (java.util.Arrays.asList(outputs).contains("probs")) {
            b.node(Graphs.node("Softmax", "softmax", List.of("logits"), List.of("probs"), Map.of("axis", 1L)));
        }
        if (java.util.Arrays.asList(outputs).contains("post_out")) {
            // a layer after the data-dependent selection, as a two-stage detector's box head reads RoIAlign's
            // per-proposal features: "post" (MatMul [1, 4]) on kept as [K, 1]
            b.initializers.add(Graphs.int64Tensor("axis1", new long[] {1}, 1));
            b.node(Graphs.node("Unsqueeze", "kept_rows", List.of("kept", "axis1"), List.of("kept2d")));
            b.matMul("post", "kept2d", "post_out", 1, 4);
        }
        Map<String, onnx.Onnx.ValueInfoProto> values = Map.of("logits", Graphs.floatValue("logits", -1, 10),
                "kept", Graphs.floatValue("kept", -1), "labels", Graphs.value("labels", onnx.Onnx.TensorProto.DataType.INT64, -1),
                "post_out", Graphs.floatValue("post_out", -1, 4), "probs", Graphs.floatValue("probs", -1, 10));
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)),
                java.util.Arrays.stream(outputs).map(values::get).toList());
    }

    /**
     * An image model without a batch dimension, as torchvision's detection models are exported: x [1, 28, 28]
     * ([C, H, W]) → Unsqueeze → "xb" [1, 1, 28, 28] → conv1 (8 channels) → relu1 → GAP → Flatten → fc → logits [1, 10].
     * With {@code unbatched = false} the same layers read x [N, 1, 28, 28].
     */
    public static OnnxModel withoutBatchDimension(boolean unbatched) {
        TestModels.Builder b = new TestModels.Builder(31);
        String x = "x";
        if (unbatched) {
            b.initializers.add(Graphs.int64Tensor("axis0", new long[] {0}, 1));
            b.node(Graphs.node("Unsqueeze", "batch", List.of("x", "axis0"), List.of("xb")));
            x = "xb";
        }
        b.conv("conv1", x, "c1", 1, 8, 3, 1, 1, 1, true).relu("relu1", "c1", "r");
        b.classifier("r", 8, 10);
        return b.build(13, List.of(unbatched ? Graphs.floatValue("x", 1, 28, 28) : Graphs.floatValue("x", -1, 1, 28, 28)),
                List.of(Graphs.floatValue("logits", unbatched ? 1 : -1, 10)));
    }
}
