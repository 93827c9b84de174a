package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.config.ConfigException;
import io.quantcal.job.table.ScaleRow;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The easyquant pass on the bundled Fashion-MNIST model at W7A7, with a small search (16 samples, 20 segments,
 * 2 rounds): cosines never drop, rows are marked, and top-1 holds. That the whole table does not depend on the
 * partitioning is {@link PartitionInvarianceTest}'s.
 */
class EasyQuantPassTest extends SparkJobTest {

    @TempDir
    Path tmp;


    static final String[] W7A7 = {"quantization.weights.bits=7", "quantization.activations.bits=7",
            "easyquant.samples=16", "easyquant.segments=20", "easyquant.rounds=2"};

    QuantcalJob.Result run(String name, String pipeline, String... overrides) {
        String output = tmp.resolve(name).toString();
        return QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output,
                JobFixtures.concat(JobFixtures.concat(W7A7, overrides), "pipeline=" + pipeline)), out);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> pass(QuantcalJob.Result r, String name) {
        return (Map<String, Object>) ((Map<String, Object>) r.summary().get("passes")).get(name);
    }

    @Test
    @SuppressWarnings("unchecked")
    void searchRaisesEveryCosineAndKeepsTop1AtW7A7() {
        QuantcalJob.Result three = run("p3", "[fold-bn,calibrate,easyquant,export,evaluate]", "calibration.partitions=3");
        QuantcalJob.Result minmax = run("mm", "[fold-bn,calibrate,export,evaluate]", "calibration.partitions=3");

        Map<String, Object> layers = (Map<String, Object>) pass(three, "easyquant").get("layers");
        assertEquals(7, layers.size(), "every quantizable layer searched");
        for (var e : layers.entrySet()) {
            Map<String, Object> m = (Map<String, Object>) e.getValue();
            double initial = (double) m.get("initial_cosine");
            double fin = (double) m.get("final_cosine");
            Assertions.assertTrue(fin >= initial, e.getKey() + ": final cosine " + fin + " < initial " + initial);
        }
        java.util.Set<String> searched = new java.util.HashSet<>();
        for (ScaleRow row : three.rows()) {
            if (row.role().equals("bias") || !layers.containsKey(row.node())) continue;
            assertEquals("easyquant", row.method(), row.tensor());
            assertEquals("cosine", row.metric(), row.tensor());
            if (row.role().equals("activation")) searched.add(row.tensor());
        }
        // the export profile's further rows (the residual Adds' operands, the pooled tensor): a tensor a layer also
        // reads carries the searched scale, the others keep the calibrator's
        for (ScaleRow row : three.rows()) {
            if (layers.containsKey(row.node())) continue;
            assertEquals(searched.contains(row.tensor()) ? "easyquant" : "minmax", row.method(), row.node() + " " + row.tensor());
        }
        // a shared activation tensor ends with one scale (its first consumer's) in every row
        Map<String, Double> activationScale = new java.util.HashMap<>();
        for (ScaleRow row : three.rows()) {
            if (!row.role().equals("activation")) continue;
            Double prev = activationScale.putIfAbsent(row.tensor(), row.scale());
            if (prev != null) assertEquals(prev, row.scale(), "one scale for activation tensor " + row.tensor());
        }
        assertEquals(16, ((Number) pass(three, "easyquant").get("samples")).intValue());
        // chunks of easyquant.chunk-samples (8) sample ids, whatever the partitions
        assertEquals(8, ((Number) pass(three, "easyquant").get("chunk_samples")).intValue());
        assertEquals(14L, ((Number) pass(three, "easyquant").get("chunks")).longValue(), "7 layers x 2 chunks of 8 samples");
        assertWorkIsTheCandidateGemms(pass(three, "easyquant"), 16);

        double eq = (double) pass(three, "evaluate").get("top1_quantized");
        double mm = (double) pass(minmax, "evaluate").get("top1_quantized");
        System.out.printf("W7A7 top-1: minmax %.4f, easyquant %.4f%n", mm, eq);
        Assertions.assertTrue(eq >= mm - 0.005, "W7A7 top-1 easyquant " + eq + " vs minmax " + mm);
    }

    /**
     * Each layer's reported work is its candidate count times the FLOPs of its forward over the search samples:
     * 2 · (output values of one sample, as ONNX Runtime computes the node) · samples · (products per output value,
     * from the weight's shape); the pass's total is their sum, and the rates are work over time.
     */
    @SuppressWarnings("unchecked")
    static void assertWorkIsTheCandidateGemms(Map<String, Object> easyquant, int samples) {
        io.quantcal.kernels.onnx.OnnxModel model = io.quantcal.kernels.onnx.OnnxModel.load(java.nio.file.Path.of(RESNET));
        List<io.quantcal.kernels.onnx.QuantizableNode> nodes = model.quantizableNodes();
        Map<String, Long> perSample = new java.util.HashMap<>();
        try (io.quantcal.kernels.runtime.ModelRunner r = io.quantcal.kernels.runtime.ModelRunner.open(model,
                nodes.stream().map(io.quantcal.kernels.onnx.QuantizableNode::output).toList(),
                io.quantcal.kernels.runtime.RunnerOptions.singleThreaded())) {
            Map<String, io.quantcal.kernels.runtime.FloatTensor> out = r.run(io.quantcal.kernels.runtime.FloatTensor.of(
                    model.inputs().get(0).name(), new float[28 * 28], 1, 1, 28, 28));
            for (var n : nodes) perSample.put(n.name(), (long) out.get(n.output()).data().length);
        }
        Map<String, Object> layers = (Map<String, Object>) easyquant.get("layers");
        double total = 0;
        for (var n : nodes) {
            Map<String, Object> m = (Map<String, Object>) layers.get(n.name());
            long[] w = n.weightShape();
            long products = n.opType().equals("Conv") ? w[1] * w[2] * w[3] : n.transB() ? w[1] : w[0];
            double expected = ((Number) m.get("candidate_evaluations")).doubleValue() * 2 * samples * perSample.get(n.name())
                    * products / 1e9;
            assertEquals(expected, ((Number) m.get("work_gflop")).doubleValue(), 1e-9 * expected, n.name());
            double s = ((Number) m.get("task_s")).doubleValue();
            Assertions.assertTrue(s > 0, n.name() + " task time " + s);
            assertEquals(expected / s, ((Number) m.get("gflop_per_s")).doubleValue(), 1e-6 * expected / s, n.name());
            total += expected;
        }
        assertEquals(total, ((Number) easyquant.get("work_gflop")).doubleValue(), 1e-9 * total);
    }

    /** Node name to (activation scale, weight scales) as the run's table holds them. */
    static Map<String, String> chosen(QuantcalJob.Result r) {
        Map<String, String> m = new java.util.TreeMap<>();
        for (ScaleRow row : r.rows()) {
            if (row.role().equals("bias")) continue;
            m.merge(row.node(), row.role() + "[" + row.channel() + "]=" + row.scale(), (a, b) -> a + " " + b);
        }
        return m;
    }

    /**
     * Sequential mode: layers in dependency waves, later waves' inputs from the partial QDQ model. The first
     * wave's layers see FP inputs in both modes, so they get exactly the parallel mode's scales; later layers see
     * other inputs. Spatial subsampling changes the scales.
     */
    @Test
    @SuppressWarnings("unchecked")
    void sequentialModeDiffersFromParallelOnlyThroughTheInputs() {
        QuantcalJob.Result par = run("par", "[fold-bn,calibrate,easyquant]", "calibration.partitions=2", "easyquant.mode=parallel");
        io.quantcal.kernels.runtime.SessionCache.clear(); // what earlier tests of this JVM left
        QuantcalJob.Result seq = run("seq", "[fold-bn,calibrate,easyquant]", "calibration.partitions=2", "easyquant.mode=sequential");
        // each wave released its partial QDQ model and capture sessions, the pass its FP model (local mode: this JVM)
        assertEquals(0, io.quantcal.kernels.runtime.SessionCache.size(), "sessions left in the cache after the pass");
        Map<String, Object> s = pass(seq, "easyquant");
        assertEquals("sequential", s.get("mode"));
        List<Map<String, Object>> waves = (List<Map<String, Object>>) s.get("waves");
        Assertions.assertTrue(waves.size() >= 4, "resnet_small's layers form a chain of waves: " + waves);
        List<String> first = (List<String>) waves.get(0).get("layers");
        assertEquals("fp32", waves.get(0).get("inputs_from"));
        Assertions.assertTrue(waves.get(1).get("inputs_from").toString().startsWith("qdq of"), waves.toString());
        Map<String, String> p = chosen(par), q = chosen(seq);
        for (String layer : first) assertEquals(p.get(layer), q.get(layer), "first-wave layer " + layer);
        Map<String, Object> pl = (Map<String, Object>) pass(par, "easyquant").get("layers");
        Map<String, Object> sl = (Map<String, Object>) s.get("layers");
        int differ = 0;
        for (var e : sl.entrySet()) {
            Map<String, Object> m = (Map<String, Object>) e.getValue();
            double initial = (double) m.get("initial_cosine"), fin = (double) m.get("final_cosine");
            Assertions.assertTrue(fin >= initial, e.getKey() + ": final cosine " + fin + " < initial " + initial);
            double parallelInitial = (double) ((Map<String, Object>) pl.get(e.getKey())).get("initial_cosine");
            if (first.contains(e.getKey())) assertEquals(parallelInitial, initial, 0.0, e.getKey());
            else if (initial != parallelInitial) differ++;
        }
        // quantized inputs change the later layers' problems (the initial cosine is measured on them)
        Assertions.assertTrue(differ >= sl.size() - first.size() - 1, differ + " later layers with other inputs");

        QuantcalJob.Result sub = run("sub", "[fold-bn,calibrate,easyquant]", "calibration.partitions=2",
                "easyquant.mode=sequential", "easyquant.positions=12");
        assertEquals(12, ((Number) pass(sub, "easyquant").get("positions")).intValue());
        Assertions.assertNotEquals(chosen(seq), chosen(sub), "12 of up to 784 positions per sample give other scales");
    }

    @SuppressWarnings("unchecked")
    static int peak(QuantcalJob.Result r, String pass) {
        Map<String, Object> sessions = (Map<String, Object>) r.summary().get("onnx_sessions");
        return ((Number) ((Map<String, Object>) sessions.get("peak_per_pass")).get(pass)).intValue();
    }

    /**
     * Sequential waves open a new FP capture session and a partial QDQ session per wave: the pass closes each wave's
     * when the wave's data are captured, and the cache's bound (runtime.max-sessions) caps what is open at once in
     * this JVM (local mode: every task's) whatever the number of waves; the run leaves no session and no lease behind.
     */
    @Test
    @SuppressWarnings("unchecked")
    void sequentialPassHoldsAtMostMaxSessionsWhateverTheWaves() {
        io.quantcal.kernels.runtime.SessionCache.clear(); // what earlier tests of this JVM left
        QuantcalJob.Result two = run("two", "[fold-bn,calibrate,easyquant]", "calibration.partitions=2",
                "easyquant.mode=sequential", "runtime.max-sessions=2");
        assertEquals(0, io.quantcal.kernels.runtime.SessionCache.size(), "sessions left in the cache after the run");
        assertEquals(0, io.quantcal.kernels.runtime.SessionCache.leases(), "leases left after the run");
        Map<String, Object> sessions = (Map<String, Object>) two.summary().get("onnx_sessions");
        assertEquals(2, ((Number) sessions.get("max_sessions")).intValue());
        assertEquals(0, ((Number) sessions.get("cached_at_end")).intValue());
        int waves = ((List<?>) pass(two, "easyquant").get("waves")).size();
        Assertions.assertTrue(waves >= 4, waves + " waves");
        // from the second wave on, a task holds the FP and the partial QDQ session at once: two, never more open
        assertEquals(2, peak(two, "easyquant"), "easyquant's peak over " + waves + " waves");
        assertEquals(1, peak(two, "calibrate"), "calibrate: one session, shared by its tasks");
    }

    @Test
    void rejectsBadSearchKeysNamingThem() {
        ConfigException e = Assertions.assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB,
                tmp.resolve("bad").toString(), "easyquant.alpha=2", "easyquant.beta=1"));
        Assertions.assertTrue(e.getMessage().contains("quantcal.easyquant.beta"), e.getMessage());
        e = Assertions.assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB,
                tmp.resolve("bad").toString(), "easyquant.segments=0"));
        Assertions.assertTrue(e.getMessage().contains("quantcal.easyquant.segments"), e.getMessage());
        e = Assertions.assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB,
                tmp.resolve("bad").toString(), "easyquant.mode=greedy"));
        Assertions.assertTrue(e.getMessage().contains("quantcal.easyquant.mode") && e.getMessage().contains("sequential"), e.getMessage());
        e = Assertions.assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB,
                tmp.resolve("bad").toString(), "easyquant.positions=-1"));
        Assertions.assertTrue(e.getMessage().contains("quantcal.easyquant.positions"), e.getMessage());
        e = Assertions.assertThrows(ConfigException.class, () -> JobFixtures.config(RESNET, CALIB,
                tmp.resolve("bad").toString(), "easyquant.chunk-samples=0"));
        Assertions.assertTrue(e.getMessage().contains("quantcal.easyquant.chunk-samples"), e.getMessage());
    }
}
