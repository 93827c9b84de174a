package io.quantcal.kernels.learned;

/**
 * The interval quantizer of QIL (Jung et al. 2019, "Learning to Quantize Deep Networks by Optimizing Quantization
 * Intervals with Task Loss", eq. 2–5) with its straight-through gradients. For a magnitude a = |w| (weights, sign
 * σ kept) or a = x ≥ 0 (activations, γ = 1):
 * <pre>
 *   T(a) = 0                          a &lt; c − d        (pruned)
 *        = 1                          a &gt; c + d        (clipped)
 *        = (α a + β)^γ                otherwise,   α = 0.5/d,  β = −0.5·c/d + 0.5
 *   code k = round(q_D · T(a)),  q_D = the grid's positive levels (2^(b−1) − 1 for signed weights)
 *   x̂ = σ · k · s,   s = (c + d)/q_D
 * </pre>
 * QIL's transformer output lives in [0, 1] and the next layer absorbs the scale when the network is trained; in
 * post-training quantization the layer's real output is reconstructed, so the discretized value is given the real
 * scale of the clipping threshold: level q_D is c + d, the value every clipped weight takes. Then the integer codes k
 * and the scale s are exactly what a DequantizeLinear of codes k with scale s computes, for any γ.
 *
 * <p>Gradients inside the interval, with t = α a + β and the straight-through estimator for round:
 * ∂x̂/∂c = σ (k/q_D − (c+d) γ t^(γ−1) / (2d)), ∂x̂/∂d = σ (k/q_D − (c+d) γ t^(γ−1) (a − c)/(2d²)),
 * ∂x̂/∂γ = σ (c+d) t^γ ln t, ∂x̂/∂w = (c+d) γ t^(γ−1)/(2d); clipped: ∂x̂/∂c = ∂x̂/∂d = σ; pruned: all 0.
 */
public final class QilQuantizer {

    /** t^(γ−1) is evaluated at t ≥ this, so that γ &lt; 1 has a finite gradient at the pruning threshold. */
    static final double MIN_T = 1e-6;

    private QilQuantizer() {}

    /** t = α a + β, α = 0.5/d, β = −0.5 c/d + 0.5: 0 at the pruning threshold c − d, 1 at the clipping threshold c + d. */
    public static double linear(double a, double c, double d) {
        return (0.5 / d) * a + (-0.5 * c / d + 0.5);
    }

    /** −1 below the pruning threshold (a &lt; c − d), 1 above the clipping threshold (a &gt; c + d), else 0. */
    public static int region(double a, double c, double d) {
        return a < c - d ? -1 : a > c + d ? 1 : 0;
    }

    /** T(a) of eq. 2/3: 0 pruned, 1 clipped, (α a + β)^γ inside. */
    public static double transform(double a, double c, double d, double gamma) {
        int r = region(a, c, d);
        return r < 0 ? 0 : r > 0 ? 1 : Math.pow(Math.max(0, linear(a, c, d)), gamma);
    }

    /** The code magnitude k = round(q_D T(a)). */
    public static int code(double a, double c, double d, double gamma, int levels) {
        return (int) Math.rint(levels * transform(a, c, d, gamma));
    }

    /** x̂ = σ k (c + d)/q_D for a signed value (weights). */
    public static double value(double w, double c, double d, double gamma, int levels) {
        return Math.signum(w) * code(Math.abs(w), c, d, gamma, levels) * (c + d) / levels;
    }
}
