package io.quantcal.kernels.adaround;

import java.io.Serializable;

/**
 * When the rounding regularizer is on and with which β (Nagel et al. 2020, sec. 5 / appendix: the
 * regularizer is off for a warm-up, then β is annealed from a high to a low value).
 *
 * <p>Iterations t = 0 … T−1. Warm-up: t &lt; warmup·T, regularizer off (λ effectively 0), exactly as AIMET's
 * {@code if cur_iter < num_iterations * warm_start: round_loss = 0}. After it, with
 * rel_t = (t − warmup·T) / (T − warmup·T) ∈ [0, 1):
 * <ul>
 *   <li>{@link Decay#COSINE}: β(t) = end + ½(start − end)(1 + cos(π·rel_t)). This is AIMET's
 *       {@code AdaroundLoss._compute_beta} (aimet_torch/adaround/adaround_loss.py), the authors' reference
 *       implementation; the default.</li>
 *   <li>{@link Decay#LINEAR}: β(t) = end + (start − end)·max(0, 1 − rel_t). This is {@code LinearTempDecay}
 *       of the BRECQ code (Li et al. 2021), the other widely used AdaRound implementation.</li>
 * </ul>
 * Both give β = start at the first regularized iteration and approach end at t = T.
 */
public record BetaSchedule(int iterations, double warmup, double start, double end, Decay decay) implements Serializable {

    public enum Decay { COSINE, LINEAR }

    public BetaSchedule {
        if (iterations < 1) throw new IllegalArgumentException("BetaSchedule: iterations must be >= 1, got " + iterations);
        if (!(warmup >= 0 && warmup < 1)) throw new IllegalArgumentException("BetaSchedule: warmup must be in [0, 1), got " + warmup);
        if (!(start > 0 && end > 0)) throw new IllegalArgumentException("BetaSchedule: start and end β must be > 0, got " + start + ", " + end);
        if (decay == null) throw new IllegalArgumentException("BetaSchedule: decay must not be null");
    }

    /** The paper's defaults: 20% warm-up, β from 20 to 2, AIMET's cosine decay. */
    public static BetaSchedule of(int iterations) {
        return new BetaSchedule(iterations, 0.2, 20, 2, Decay.COSINE);
    }

    /** The first iteration with the regularizer on: ⌈warmup·T⌉. */
    public int warmupEnd() {
        return (int) Math.ceil(warmup * iterations);
    }

    /** False during the warm-up (t &lt; warmup·T). */
    public boolean regularizerActive(int t) {
        return t >= warmup * iterations;
    }

    /** β(t); {@code start} during the warm-up (unused there). */
    public double beta(int t) {
        double warmEnd = warmup * iterations;
        if (t < warmEnd) return start;
        double rel = Math.min(1, (t - warmEnd) / (iterations - warmEnd));
        return switch (decay) {
            case COSINE -> end + 0.5 * (start - end) * (1 + Math.cos(rel * Math.PI));
            case LINEAR -> end + (start - end) * Math.max(0, 1 - rel);
        };
    }
}
