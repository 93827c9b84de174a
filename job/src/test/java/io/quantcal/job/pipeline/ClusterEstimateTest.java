package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ClusterEstimateTest {

    @Test
    void wavesOfIndependentTasksOnNExecutorsHandWorked() {
        // wave 0: tasks of 4, 2, 2 s (sum 8, longest 4); wave 1: one task of 3 s
        ClusterEstimate e = new ClusterEstimate();
        e.add(0, 4_000_000_000L);
        e.add(1, 3_000_000_000L);
        e.add(0, 2_000_000_000L);
        e.add(0, 2_000_000_000L);
        assertEquals(11.0, e.taskSeconds(), 1e-12);
        assertEquals(7.0, e.criticalPathSeconds(), 1e-12);
        // one executor: the sum, both bounds
        assertEquals(11.0, e.lowerSeconds(1), 1e-12);
        assertEquals(11.0, e.upperSeconds(1), 1e-12);
        // two: wave 0 at least max(4, 8/2) = 4, at most 8/2 + 4·(1/2) = 6; wave 1 at least 3, at most 1.5 + 1.5 = 3
        assertEquals(7.0, e.lowerSeconds(2), 1e-12);
        assertEquals(9.0, e.upperSeconds(2), 1e-12);
        // four: at least max(4, 2) + 3 = 7, at most (2 + 3) + (0.75 + 2.25) = 8
        assertEquals(7.0, e.lowerSeconds(4), 1e-12);
        assertEquals(8.0, e.upperSeconds(4), 1e-12);
        Map<String, Object> s = e.summary();
        assertEquals(2, s.get("waves"));
        assertEquals(List.of(7.0, 9.0), ((Map<?, ?>) s.get("executors_s")).get("2"));
        assertEquals(ClusterEstimate.EXECUTORS.size(), ((Map<?, ?>) s.get("executors_s")).size());
        // eight: (1 + 3.5) + (0.375 + 2.625) = 7.5; 32: (0.25 + 3.875) + (0.09375 + 2.90625) = 7.125
        assertEquals("adaround: layer tasks 11.0 s on one executor; on N one-core executors (2 waves): N=2 7.0-9.0 s,"
                + " N=8 7.0-7.5 s, N=32 7.0-7.1 s, never below 7.0 s (the waves' longest layers)", e.line("adaround"));
    }
}
