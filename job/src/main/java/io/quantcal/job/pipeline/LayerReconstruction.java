package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.InputBinding;
import io.quantcal.job.data.Sample;
import io.quantcal.kernels.adaround.AdaRoundProblem;
import io.quantcal.kernels.adaround.LayerSampler;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.InputTensor;
import io.quantcal.kernels.runtime.KernelThreads;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import scala.Tuple2;

/**
 * The Spark side of layer reconstruction, shared by the passes that solve one problem per layer (adaround, learn,
 * stochastic rounding's best of K): the chosen samples run through the model in their partitions; every sample's
 * captured layer input becomes that sample's columns of X ({@link LayerSampler}: im2col patches with a per-sample
 * seeded subsample, or Gemm/MatMul rows), keyed by layer; a partitioner with one partition per (layer, copy) brings
 * each layer's columns to one task, which sorts them by sample id, builds the layer's {@link AdaRoundProblem} and
 * hands it to the pass's kernel call. So the driver never holds the inputs and the problem does not depend on the
 * partitioning. X comes from the FP model or from a partly quantized one, whose FP target is computed where the
 * sample was captured (AdaRound eq. 25 / eq. 26).
 */
final class LayerReconstruction {

    /** Conv layers keep at most this many im2col patch columns in all (MAX_COLUMNS / samples per sample), bounding task memory. */
    static final int MAX_COLUMNS = 50_000;

    private LayerReconstruction() {}

    /**
     * One layer's inputs to a task: plain arrays, no model. {@code index} is the layer's place in the node list;
     * {@code input} the parameters of the layer's input activation (for passes that quantize it; else null);
     * {@code cacheFile} where a pass with a resume cache writes the result (else null).
     */
    record LayerTask(int index, QuantizableNode node, float[] weight, float[] bias, QuantParams params, QuantParams input,
                     String cacheFile) implements Serializable {}

    /**
     * One sample's columns for one layer: X from the model whose input is reconstructed, and (asymmetric form, a wave
     * after the first) the sample's FP target rows, computed where the sample was captured; null when the target is
     * act(W X + b) of X itself.
     */
    record Block(LayerSampler.Columns inputs, LayerSampler.Columns target) implements Serializable {}

    /**
     * How a pass captures: {@code samples} the number of samples chosen (it bounds the Conv columns per sample),
     * {@code seed} of the column subsample, the output compared after the fused activation ({@code clipOutput}),
     * the column batch the FP target is computed with, and {@code copies}: tasks per layer, each given the same
     * problem and its copy number (stochastic rounding's K draws; 1 otherwise).
     */
    record Capture(String pass, int samples, long seed, boolean clipOutput, int batchColumns, int copies) implements Serializable {}

    /** The kernel call of one task. */
    interface Solver<R> extends Serializable {
        /**
         * {@code threads}: the threads the task may run at once (more than one core when the wave has fewer tasks than
         * the executors have slots); ND4J's are left at runtime.kernel-threads, a solver's own loops may use these.
         */
        R solve(LayerTask task, int copy, AdaRoundProblem problem, int threads) throws Exception;
    }

    /** One task's result, keyed by the layer's index and the copy. */
    record Solved<R>(int index, int copy, R result) implements Serializable {}

    /** The first {@code count} good calibration samples by id, cached (only ids reach the driver). */
    static JavaRDD<Sample> selectSamples(RunContext ctx, OnnxModel model, int count, String pass) {
        QuantcalConfig cfg = ctx.config();
        JavaRDD<Sample> all = ctx.samples().get(InputBinding.of(model, cfg, cfg.calibration())).filter(Sample::ok);
        List<Long> ids = all.map(Sample::id).takeOrdered(count);
        if (ids.isEmpty()) throw new io.quantcal.job.data.BadSampleException(pass + ": no usable calibration samples");
        long last = ids.get(ids.size() - 1);
        JavaRDD<Sample> chosen = all.filter(x -> x.id() <= last).cache();
        chosen.count();
        return chosen;
    }

    /**
     * One wave's layers: capture in the partitions, group by (layer, copy), one task each runs {@code solver}.
     * Results come back in (layer index, copy) order.
     *
     * @param model      the FP model, {@code fp} its broadcast
     * @param quantized  null: X from the FP model, target act(W X + b) of X itself; else the partly quantized model
     *                   whose inputs are X, against the FP target
     */
    static <R> List<Solved<R>> solve(RunContext ctx, JavaRDD<Sample> samples, OnnxModel model, BroadcastModel fp,
                                     OnnxModel quantized, List<LayerTask> tasks, int wave, Capture capture,
                                     Solver<R> solver) {
        QuantcalConfig cfg = ctx.config();
        List<String> tensors = tasks.stream().map(t -> t.node().input()).distinct().toList();
        ModelInputs input = InputBinding.of(model, cfg, cfg.calibration());
        BroadcastModel bx = quantized == null ? fp : BroadcastModel.of(ctx, quantized, capture.pass() + "-wave-" + wave);
        BroadcastModel bf = quantized == null ? null : fp;
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(ctx.spark().sparkContext());
        Broadcast<List<LayerTask>> bt = jsc.broadcast(tasks);
        boolean skipBad = cfg.calibration().skipBadSamples();
        RunnerOptions opts = new RunnerOptions(cfg.intraOpThreads(), 1);
        int batch = input.runBatch(cfg.calibration().batchSize());
        int perSample = Math.max(1, MAX_COLUMNS / capture.samples());
        long seed = capture.seed();
        int threads = cfg.kernelThreads();
        // a wave with fewer layer tasks than the executors' slots (the sequential passes' one-layer waves) gives each
        // task the idle slots for its own loops
        int slots = TaskMemory.concurrentTasks(ctx.spark().sparkContext());
        int perTask = Math.max(1, threads); // 0 (ND4J's default) still means one thread of our own loops
        int taskThreads = KernelThreads.forStage(perTask, slots, tasks.size() * capture.copies());
        if (taskThreads > perTask) {
            ctx.out().printf("%s: wave %d: %d layer task(s), %d task slots per executor: %d threads per task%n", capture.pass(),
                    wave, tasks.size() * capture.copies(), slots, taskThreads);
        }
        boolean clip = capture.clipOutput();
        int batchColumns = capture.batchColumns();
        int copies = capture.copies();
        String pass = capture.pass();

        List<Solved<R>> done;
        try {
            JavaPairRDD<Integer, Block> blocks = samples.mapPartitionsToPair(it -> {
                KernelThreads.limit(threads);
                List<Sample> good = SamplePartitions.split(it, skipBad).good();
                List<LayerTask> ts = bt.value();
                List<Tuple2<Integer, Block>> out = new ArrayList<>();
                try (var lx = bx.lease(tensors, opts); var lf = bf == null ? null : bf.lease(tensors, opts)) {
                    ModelRunner rx = lx.runner();
                    ModelRunner rf = lf == null ? null : lf.runner();
                    for (int from = 0; from < good.size(); from += batch) {
                        List<Sample> b = good.subList(from, Math.min(good.size(), from + batch));
                        Map<String, InputTensor> feed = input.stack(b.stream().map(Sample::inputs).toList());
                        Map<String, FloatTensor> ox = rx.runInputs(feed);
                        Map<String, FloatTensor> of = rf == null ? null : rf.runInputs(feed);
                        for (int k = 0; k < b.size(); k++) {
                            long id = b.get(k).id();
                            for (int t = 0; t < ts.size(); t++) {
                                QuantizableNode n = ts.get(t).node();
                                LayerSampler.Columns x = LayerSampler.columns(n, id, ox.get(n.input()).batch(k, k + 1), perSample, seed);
                                LayerSampler.Columns y = null;
                                if (rf != null) {
                                    LayerTask lt = ts.get(t);
                                    y = LayerSampler.target(n, lt.weight(), lt.bias(), lt.params(),
                                            LayerSampler.columns(n, id, of.get(n.input()).batch(k, k + 1), perSample, seed), clip,
                                            batchColumns);
                                }
                                Block block = new Block(x, y);
                                for (int c = 0; c < copies; c++) out.add(new Tuple2<>(t * copies + c, block));
                            }
                        }
                    }
                } // the leases: this executor may close the sessions for newer ones from here on
                return out.iterator();
            }).partitionBy(new IndexPartitioner(tasks.size() * copies)); // one task per (layer, copy)

            done = new ArrayList<>(blocks.mapPartitionsWithIndex((part, it) -> {
                List<Block> mine = new ArrayList<>();
                while (it.hasNext()) {
                    Tuple2<Integer, Block> e = it.next();
                    if (e._1() != part.intValue()) throw new IllegalStateException(pass + ": layer task " + e._1() + " in partition " + part);
                    mine.add(e._2());
                }
                if (mine.isEmpty()) return java.util.Collections.emptyIterator();
                KernelThreads.limit(threads);
                // sample order: the problem is the same whatever the partitioning of the samples
                mine.sort(Comparator.comparingLong(x -> x.inputs().sample()));
                LayerTask t = bt.value().get(part / copies);
                List<LayerSampler.Columns> xs = mine.stream().map(Block::inputs).toList();
                AdaRoundProblem p = LayerSampler.problem(t.node(), t.weight(), t.bias(), t.params(), xs, null, clip, batchColumns);
                if (mine.get(0).target() != null) p = LayerSampler.withTargets(p, xs, mine.stream().map(Block::target).toList());
                mine.clear();
                R r = solver.solve(t, part % copies, p, taskThreads);
                return List.<Solved<R>>of(new Solved<>(t.index(), part % copies, r)).iterator();
            }, false).collect());
        } finally {
            // the wave's sessions (and its partial model's broadcast) are done with; fp's broadcast serves later waves
            bt.destroy();
            if (bx != fp) bx.release();
            fp.closeSessions();
        }
        done.sort(Comparator.<Solved<R>>comparingInt(Solved::index).thenComparingInt(Solved::copy));
        return done;
    }
}
