package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.ConvForward;
import io.quantcal.kernels.layer.ConvSpec;
import io.quantcal.kernels.layer.LayerForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * Candidate evaluations per second of {@link CandidateEvaluation} and the GFLOP/s its candidate gemms reach,
 * beside ND4J's own matmul peak (a square float32 matmul) measured in the same run.
 *
 * <pre>
 * mvn -B -q -o -pl kernels compile exec:java -Dexec.mainClass=io.quantcal.kernels.easyquant.EasyQuantBenchmark \
 *     [-Dexec.args="threads=2 block=16"]
 * </pre>
 *
 * "end-to-end" GFLOP/s divides the candidate gemms' flops by the whole evaluate() time (fake-quant, im2col,
 * gemm, scoring); "gemm" divides them by the time of the same gemms alone (same shapes, {@link
 * CandidateEvaluation#mmul}). Medians of at least 5 timed runs after 2 warm-ups.
 */
public final class EasyQuantBenchmark {

    private EasyQuantBenchmark() {}

    public static void main(String[] args) {
        int threads = Runtime.getRuntime().availableProcessors();
        int block = 16;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            if (kv[0].equals("threads")) threads = Integer.parseInt(kv[1]);
            else if (kv[0].equals("block")) block = Integer.parseInt(kv[1]);
            else throw new IllegalArgumentException("EasyQuantBenchmark: unknown argument " + a + " (threads=, block=)");
        }
        Nd4j.getExecutioner();
        NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
        Nd4j.getEnvironment().setMaxThreads(threads);
        Nd4j.getEnvironment().setMaxMasterThreads(threads);
        Nd4j.factory().blas().setMaxThreads(threads);
        System.out.printf(Locale.ROOT, "threads %d, %d candidates per block%n", threads, block);
        run(block);
    }

    static void run(int block) {

        double peak = Math.max(peak(), peak()); // the first one also warms ND4J's thread pool up
        System.out.printf(Locale.ROOT, "ND4J matmul peak (1024x1024x1024 float32, best of 2 medians): %.1f GFLOP/s%n", peak);
        System.out.printf(Locale.ROOT, "%-38s %-10s %9s %10s %10s %12s %10s %8s%n", "layer", "side", "ms/block",
                "cand/s", "GFLOP/blk", "end-to-end", "gemm", "of peak");

        // a ResNet-style 3x3 conv, 16 samples of 28x28
        INDArray x = random(3, 16, 64, 28, 28), w = random(4, 64, 64, 3, 3);
        LayerOp conv = new LayerOp.Conv(ConvSpec.of(1, 1, 1, 1), Activation.RELU);
        LayerProblem pc = problem(conv, x, w);
        long r = 64 * 9, cols = 16L * 28 * 28;
        double convFlop = 2.0 * 64 * r * cols * block;
        INDArray patches = ConvForward.patches(x, w.shape(), ((LayerOp.Conv) conv).spec(), 0);
        INDArray wStack = random(5, (long) block * 64, r);
        double gemmW = median(() -> CandidateEvaluation.mmul(wStack, patches, false, (long) block * 64, cols));
        INDArray patchesB = Nd4j.concat(1, repeat(patches, block));
        INDArray w1 = random(6, 64, r);
        double gemmA = median(() -> CandidateEvaluation.mmul(w1, patchesB, false, 64, cols * block));
        row("conv 3x3 16x64x28x28 -> 64", pc, block, convFlop, gemmW, gemmA, peak);

        // a classifier head, 256 rows
        INDArray xg = random(7, 256, 1024), wg = random(8, 512, 1024);
        LayerProblem pg = problem(new LayerOp.Gemm(true, Activation.NONE), xg, wg);
        double gemmFlop = 2.0 * 256 * 1024 * 512 * block;
        INDArray wgs = random(9, (long) block * 512, 1024);
        double gemmGW = median(() -> CandidateEvaluation.mmul(xg, wgs, true, 256, (long) block * 512));
        INDArray xgs = random(10, (long) block * 256, 1024);
        double gemmGA = median(() -> CandidateEvaluation.mmul(xgs, wg, true, (long) block * 256, 512));
        row("gemm transB 256x1024 -> 512", pg, block, gemmFlop, gemmGW, gemmGA, peak);
        // a weight step at the defaults (segments 100, blocks of 16: 7 blocks) block by block against one call that
        // prepares the fixed side (quantized input, im2col patches) once for the step
        INDArray xd = random(11, 16, 96, 28, 28), wd = random(12, 96, 1, 3, 3);
        LayerProblem pd = problem(new LayerOp.Conv(ConvSpec.of(1, 1, 1, 96), Activation.RELU), xd, wd);
        System.out.printf(Locale.ROOT, "%-38s %14s %14s %8s%n", "weight step, 7 blocks of " + block, "block by block",
                "one call", "ratio");
        step("conv 3x3 16x64x28x28 -> 64", pc, block);
        step("depthwise 3x3 16x96x28x28", pd, block);
        // the machine is shared: measure the peak again, so a busy moment at the start does not flatter the ratios
        System.out.printf(Locale.ROOT, "ND4J matmul peak again, after the layers: %.1f GFLOP/s (\"of peak\" used %.1f)%n",
                peak(), peak);
    }

    static void step(String name, LayerProblem p, int block) {
        double s0 = p.weight().scale()[0];
        java.util.List<CandidateBlock> blocks = new java.util.ArrayList<>();
        for (int b = 0; b < 7; b++) {
            double[] c = new double[block];
            for (int i = 0; i < block; i++) c[i] = s0 * (0.5 + 1.5 * (b * block + i) / (7.0 * block));
            blocks.add(CandidateBlock.perTensor(SearchSide.WEIGHT, p.activation().scale(), c));
        }
        double each = median(() -> {
            for (CandidateBlock b : blocks) CandidateEvaluation.evaluate(p, b);
            return null;
        });
        double once = median(() -> CandidateEvaluation.evaluate(p, blocks));
        System.out.printf(Locale.ROOT, "%-38s %11.1f ms %11.1f ms %7.2fx%n", name, each, once, each / once);
    }

    /**
     * ND4J's float32 matmul speed in GFLOP/s with its current thread setting: the better of 1024³ and 2048×2048×2048
     * (medians), each into a preallocated output as the candidate gemms run.
     */
    public static double peak() {
        double best = 0;
        for (int n : new int[] {1024, 2048}) {
            INDArray a = random(1, n, n), b = random(2, n, n);
            INDArray y = Nd4j.createUninitialized(org.nd4j.linalg.api.buffer.DataType.FLOAT, new long[] {n, n}, 'c');
            double ms = median(() -> {
                CandidateEvaluation.mmulInto(a, b, false, y);
                return null;
            });
            best = Math.max(best, 2.0 * n * n * n / ms / 1e6);
            a.close();
            b.close();
            y.close();
        }
        return best;
    }

    /**
     * The machine's own speedup on float32 gemms: {@code threads} threads each running one-thread 1024³ products at
     * once, against one thread alone (ND4J's kernels must be limited to one thread per call, as search tasks are).
     */
    public static double gemmSpeedup(int threads) throws InterruptedException {
        INDArray[][] m = new INDArray[threads + 1][];
        for (int k = 0; k <= threads; k++) {
            m[k] = new INDArray[] {random(3 + k, 1024, 1024), random(7 + k, 1024, 1024),
                    Nd4j.createUninitialized(org.nd4j.linalg.api.buffer.DataType.FLOAT, new long[] {1024, 1024}, 'c')};
        }
        double r = io.quantcal.kernels.bench.ThreadScaling.speedup(threads, k -> () -> {
            io.quantcal.kernels.runtime.KernelThreads.limit(1); // OpenMP's count is per thread: one-thread gemms on each
            for (int i = 0; i < 8; i++) CandidateEvaluation.mmulInto(m[k][0], m[k][1], false, m[k][2]);
        });
        for (INDArray[] a : m) for (INDArray x : a) x.close();
        return r;
    }

    static void row(String name, LayerProblem p, int block, double flop, double gemmWeightMs, double gemmActMs, double peak) {
        for (SearchSide side : SearchSide.values()) {
            boolean ws = side == SearchSide.WEIGHT;
            double s0 = ws ? p.weight().scale()[0] : p.activation().scale()[0];
            double[] c = new double[block];
            for (int i = 0; i < block; i++) c[i] = s0 * (0.5 + 1.5 * i / Math.max(1, block - 1));
            double[] fixed = ws ? p.activation().scale() : p.weight().scale();
            CandidateBlock cb = CandidateBlock.perTensor(side, fixed, c);
            double ms = median(() -> CandidateEvaluation.evaluate(p, cb));
            double gemmMs = ws ? gemmWeightMs : gemmActMs;
            System.out.printf(Locale.ROOT, "%-38s %-10s %9.1f %10.1f %10.2f %7.1f GF/s %5.1f GF/s %7.0f%%%n", name, side, ms,
                    block / ms * 1e3, flop / 1e9, flop / ms / 1e6, flop / gemmMs / 1e6, 100 * flop / gemmMs / 1e6 / peak);
        }
    }

    static LayerProblem problem(LayerOp op, INDArray x, INDArray w) {
        INDArray o = LayerForward.forward(op, x, w, null);
        long[] ids = new long[(int) x.size(0)];
        for (int i = 0; i < ids.length; i++) ids[i] = i;
        QuantParams aq = SymmetricQuantizer.fromClip(8, true, x.amaxNumber().doubleValue());
        QuantParams wq = SymmetricQuantizer.fromClip(8, true, w.amaxNumber().doubleValue());
        return new LayerProblem("bench", ids, x.dup('c').data().asFloat(), x.shape(), o.dup('c').data().asFloat(), o.shape(),
                true, w.dup('c').data().asFloat(), w.shape(), null, op, aq, wq);
    }

    static INDArray[] repeat(INDArray a, int n) {
        INDArray[] r = new INDArray[n];
        Arrays.fill(r, a);
        return r;
    }

    static INDArray random(long seed, long... shape) {
        Random r = new Random(seed);
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
        return Nd4j.create(v, shape, 'c');
    }

    /** Median milliseconds of 5 timed runs after 2 warm-ups. */
    static double median(Supplier<?> f) {
        for (int i = 0; i < 2; i++) close(f.get());
        double[] t = new double[5];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            Object o = f.get();
            t[i] = (System.nanoTime() - t0) / 1e6;
            close(o);
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }

    private static void close(Object o) {
        if (o instanceof INDArray a) a.close();
    }
}
