package io.quantcal.kernels.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.learned.QilQuantizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * What the deployed QDQ model computes for QIL's quantizers, in ONNX Runtime (8-bit grids, QuantizeLinear's types):
 * the weights, exported as QIL's codes with scale (c + d)/q_D, dequantize to exactly QIL's values for any γ; the input,
 * exported as the uniform grid [0, c_X + d_X], equals QIL's T_X (γ = 1) when c_X = d_X and differs when the learned
 * pruning threshold c_X − d_X is above 0 (below it QIL gives 0, the uniform grid does not).
 */
class QilDeploymentOrtTest {

    @Test
    void weightsAreExactForAnyGammaAndTheInputGridIsQilsWhenItDoesNotPrune() throws Exception {
        SplittableRandom r = new SplittableRandom(9);
        int n = 400;
        // weights: c = 0.5, d = 0.3, γ = 1.7, signed 8-bit narrow grid, q_D = 127
        double c = 0.5, d = 0.3, gamma = 1.7;
        QuantGrid wg = SymmetricQuantizer.grid(8, true);
        float s = (float) ((c + d) / wg.qmax());
        float[] w = new float[n], deq = new float[n];
        int[] codes = new int[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) (r.nextDouble() * 2 - 1);
            codes[i] = (int) Math.signum(w[i]) * QilQuantizer.code(Math.abs(w[i]), c, d, gamma, wg.qmax());
            deq[i] = codes[i] * s;                          // what the exporter writes: codes, scale s
        }
        OrtQdq.Result wr = OrtQdq.run(13, deq, new long[] {n}, QuantParams.perTensor(wg, true, s, 0));
        int pruned = 0;
        for (int i = 0; i < n; i++) {
            assertEquals(codes[i], wr.q()[i], "code of w = " + w[i]);
            assertEquals(QilQuantizer.value(w[i], c, d, gamma, wg.qmax()), wr.y()[i], 1e-6, "value of w = " + w[i]);
            if (Math.abs(w[i]) < c - d) pruned++;
        }
        assertTrue(pruned > 0);

        // inputs, unsigned 8-bit, q_D = 255: without a pruning interval (c = d) the uniform grid is QIL's T_X
        QuantGrid ag = QuantGrid.of(8, false);
        double cx = 1.2, dx = 1.2;
        float sx = (float) ((cx + dx) / ag.qmax());
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) ((Math.floor(r.nextDouble() * 300) + 0.3) * sx);   // no ties
        OrtQdq.Result xr = OrtQdq.run(13, x, new long[] {n}, QuantParams.perTensor(ag, false, sx, 0));
        for (int i = 0; i < n; i++) {
            double qil = QilQuantizer.code(x[i], cx, dx, 1, ag.qmax()) * (cx + dx) / ag.qmax();
            assertEquals(qil, xr.y()[i], 1e-5, "x = " + x[i]);
        }
        // with a pruning threshold c − d = 0.4 > 0 they differ: QIL prunes x = 0.3 to 0, the uniform grid keeps it
        double cp = 1.4, dp = 1.0;
        float sp = (float) ((cp + dp) / ag.qmax());
        OrtQdq.Result pr = OrtQdq.run(13, new float[] {0.3f, 1.4f}, new long[] {2}, QuantParams.perTensor(ag, false, sp, 0));
        assertEquals(0, QilQuantizer.code(0.3, cp, dp, 1, ag.qmax()));
        assertEquals(0.3, pr.y()[0], sp / 2);
        // and spaces its levels by (c + d)/q_D where QIL's are 2d/q_D: x = c maps to (c + d)/2 in QIL, c deployed
        assertEquals((cp + dp) / 2, QilQuantizer.code(1.4, cp, dp, 1, ag.qmax()) * (cp + dp) / ag.qmax(), sp);
        assertEquals(1.4, pr.y()[1], sp / 2);
    }
}
