package io.quantcal.kernels.adaround;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The rectified sigmoid (eq. 23) and the rounding regularizer (eq. 24), by hand. */
class RectifiedSigmoidTest {

    @Test
    void valuesByHand() {
        // σ(0) = 0.5 → 0.5·1.2 − 0.1 = 0.5
        assertEquals(0.5, RectifiedSigmoid.h(0), 1e-15);
        // σ(ln 3) = 0.75 → 0.75·1.2 − 0.1 = 0.8
        assertEquals(0.8, RectifiedSigmoid.h(Math.log(3)), 1e-12);
        // σ(−ln 3) = 0.25 → 0.2
        assertEquals(0.2, RectifiedSigmoid.h(-Math.log(3)), 1e-12);
        // saturates: σ ≥ 11/12 ⇔ V ≥ ln 11 gives 1, σ ≤ 1/12 ⇔ V ≤ −ln 11 gives 0
        assertEquals(1.0, RectifiedSigmoid.h(Math.log(11) + 1e-9), 0);
        assertEquals(1.0, RectifiedSigmoid.h(10), 0);
        assertEquals(0.0, RectifiedSigmoid.h(-Math.log(11) - 1e-9), 0);
        assertEquals(0.0, RectifiedSigmoid.h(-10), 0);
    }

    @Test
    void derivativeByHandAndZeroWhereClipped() {
        // σ(0)(1 − σ(0))·1.2 = 0.25·1.2
        assertEquals(0.3, RectifiedSigmoid.derivative(0), 1e-15);
        // σ = 0.75: 0.75·0.25·1.2
        assertEquals(0.225, RectifiedSigmoid.derivative(Math.log(3)), 1e-12);
        assertEquals(0.0, RectifiedSigmoid.derivative(3), 0);
        assertEquals(0.0, RectifiedSigmoid.derivative(-3), 0);
        for (double v = -2.3; v < 2.3; v += 0.17) {
            double fd = (RectifiedSigmoid.h(v + 1e-6) - RectifiedSigmoid.h(v - 1e-6)) / 2e-6;
            assertEquals(fd, RectifiedSigmoid.derivative(v), 1e-8, "v = " + v);
        }
    }

    @Test
    void inverseRecoversTheFractionAndStaysFinite() {
        for (double f : new double[] {0.01, 0.2, 0.5, 0.7311, 0.99}) {
            assertEquals(f, RectifiedSigmoid.h(RectifiedSigmoid.inverse(f)), 1e-12);
        }
        // h = 0.5 ⇔ V = 0; h = 0.8 ⇔ V = ln 3
        assertEquals(0.0, RectifiedSigmoid.inverse(0.5), 1e-15);
        assertEquals(Math.log(3), RectifiedSigmoid.inverse(0.8), 1e-12);
        // exact integers W/s (fraction 0) start just inside the kink, with a finite V and a gradient
        double v0 = RectifiedSigmoid.inverse(0);
        assertEquals(RectifiedSigmoid.INVERSE_MARGIN, RectifiedSigmoid.h(v0), 1e-12);
        assertEquals(true, RectifiedSigmoid.derivative(v0) > 0);
        assertEquals(1 - RectifiedSigmoid.INVERSE_MARGIN, RectifiedSigmoid.h(RectifiedSigmoid.inverse(1)), 1e-12);
    }

    @Test
    void regularizerByHand() {
        // h = 0.5: 1 − 0^β = 1; h = 0.8: 1 − 0.6^2 = 0.64; h ∈ {0,1}: 0
        assertEquals(1.0, RoundingRegularizer.term(0, 2), 1e-15);
        assertEquals(0.64, RoundingRegularizer.term(Math.log(3), 2), 1e-12);
        assertEquals(0.0, RoundingRegularizer.term(5, 20), 0);
        assertEquals(0.0, RoundingRegularizer.term(-5, 20), 0);
        assertEquals(1.64, RoundingRegularizer.value(new double[] {0, Math.log(3), 5}, 2), 1e-12);
        for (double beta : new double[] {2, 3.5, 20}) {
            for (double v = -2.3; v < 2.3; v += 0.13) {
                double fd = (RoundingRegularizer.term(v + 1e-6, beta) - RoundingRegularizer.term(v - 1e-6, beta)) / 2e-6;
                assertEquals(fd, RoundingRegularizer.derivative(v, beta), 1e-6, "v = " + v + ", β = " + beta);
            }
        }
    }

    /** The loops' one-sigmoid, one-power form gives the per-V functions' values: the derivative exactly. */
    @Test
    void fusedTermAndDerivativeMatchThePerValueFunctions() {
        double[] d = new double[1];
        for (double beta : new double[] {2, 3.5, 20}) {
            for (double v : new double[] {-5, -2.3, -0.4, 0, Math.log(3), 0.77, 2.2, 5}) {
                double s = RectifiedSigmoid.sigmoid(v);
                double h = RectifiedSigmoid.hOfSigmoid(s), dh = RectifiedSigmoid.derivativeOfSigmoid(s);
                assertEquals(RectifiedSigmoid.h(v), h, 0, "h, v = " + v);
                assertEquals(RectifiedSigmoid.derivative(v), dh, 0, "h', v = " + v);
                double term = RoundingRegularizer.termAndDerivative(h, dh, beta, d, 0);
                assertEquals(RoundingRegularizer.term(v, beta), term, 1e-15, "term, v = " + v + ", β = " + beta);
                assertEquals(RoundingRegularizer.derivative(v, beta), d[0], 0, "derivative, v = " + v + ", β = " + beta);
            }
        }
        // by hand: h = 0.8 (v = ln 3), β = 2: term 1 − 0.6² = 0.64, derivative −2·0.6·2·h' = −2.4·0.225 = −0.54
        double s = RectifiedSigmoid.sigmoid(Math.log(3));
        assertEquals(0.64, RoundingRegularizer.termAndDerivative(RectifiedSigmoid.hOfSigmoid(s),
                RectifiedSigmoid.derivativeOfSigmoid(s), 2, d, 0), 1e-12);
        assertEquals(-0.54, d[0], 1e-12);
    }
}
