package io.quantcal.job.pipeline;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a reconstruction pass's layer tasks (AdaRound, learn) would take on a cluster, from the task times of this run:
 * the layers of a wave are independent Spark tasks, one core each, and a wave starts when the one before it ends.
 * With the tasks of wave w taking t_1 … t_k (sum S_w, longest M_w), N one-core executors need at least
 * max(M_w, S_w / N) for the wave (the longest task, or the work spread evenly), and Spark's greedy scheduling at most
 * S_w / N + M_w·(1 − 1/N) (Graham's list-scheduling bound); the pass's estimate sums the waves. Both count the
 * optimizers' time only: the per-wave capture of the layers' inputs in ONNX Runtime, scheduling and the driver's work
 * come on top (the pass's wall time minus its task time on one executor shows how much).
 */
final class ClusterEstimate {

    /** The cluster sizes the estimate is given for (one-core executors, or cores). */
    static final List<Integer> EXECUTORS = List.of(1, 2, 4, 8, 16, 32, 64);

    /** wave → {sum of task nanos, longest task nanos} */
    private final Map<Integer, long[]> waves = new TreeMap<>();

    /** Adds one layer's task, of {@code nanos}, in {@code wave}. */
    void add(int wave, long nanos) {
        long[] w = waves.computeIfAbsent(wave, k -> new long[2]);
        w[0] += nanos;
        w[1] = Math.max(w[1], nanos);
    }

    /** The sum of the task times (one executor), in seconds. */
    double taskSeconds() {
        long s = 0;
        for (long[] w : waves.values()) s += w[0];
        return s / 1e9;
    }

    /** The sum over waves of each wave's longest task: no number of executors does better. */
    double criticalPathSeconds() {
        long s = 0;
        for (long[] w : waves.values()) s += w[1];
        return s / 1e9;
    }

    /** At least this many seconds on {@code n} one-core executors. */
    double lowerSeconds(int n) {
        double s = 0;
        for (long[] w : waves.values()) s += Math.max(w[1], w[0] / (double) n);
        return s / 1e9;
    }

    /** At most this many seconds on {@code n} one-core executors with greedy scheduling. */
    double upperSeconds(int n) {
        double s = 0;
        for (long[] w : waves.values()) s += w[0] / (double) n + w[1] * (1 - 1.0 / n);
        return s / 1e9;
    }

    /** run.json's {@code cluster_estimate}: the task and critical-path seconds, and [at least, at most] per size. */
    Map<String, Object> summary() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("waves", waves.size());
        m.put("task_s", round(taskSeconds()));
        m.put("critical_path_s", round(criticalPathSeconds()));
        Map<String, Object> by = new LinkedHashMap<>();
        for (int n : EXECUTORS) by.put(String.valueOf(n), List.of(round(lowerSeconds(n)), round(upperSeconds(n))));
        m.put("executors_s", by);
        return m;
    }

    /** The console line: the estimate for a few sizes. */
    String line(String pass) {
        StringBuilder sb = new StringBuilder(pass).append(": layer tasks ").append(String.format("%.1f s", taskSeconds()))
                .append(" on one executor; on N one-core executors (").append(waves.size()).append(waves.size() == 1 ? " wave" : " waves")
                .append("):");
        for (int n : List.of(2, 8, 32)) {
            sb.append(String.format(" N=%d %.1f-%.1f s,", n, lowerSeconds(n), upperSeconds(n)));
        }
        return sb.append(String.format(" never below %.1f s (the waves' longest layers)", criticalPathSeconds())).toString();
    }

    private static double round(double s) {
        return Math.round(s * 1000) / 1000.0;
    }
}
