package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.quant.QuantParams;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * EasyQuant's driver (Wu et al. 2020, Sec. 3.2, Algorithm 1 for one layer): starting from the calibrated
 * S_w, S_a, for rounds r = 1..K search S_w on its grid with S_a fixed, then S_a with S_w fixed, each by
 * arg max of Σ_i cos(O_i, Ô_i) over the search samples; stop when a round gains less than ε.
 *
 * <p>The grids stay those of the initial scales (the paper's [αS, βS] around the calibrated S). Every step
 * compares against the current scale, and a step only moves when its best candidate beats the current
 * objective: the objective (mean per-sample cosine of the whole output) never decreases. Per-channel
 * weights pick each channel's best grid point against that channel's summed cosine; the combined
 * proposal is then scored on the whole output (one more candidate) and kept only if it beats the current
 * objective.
 *
 * <p>Ties: scores within {@link Options#tieTolerance()} (in mean cosine) of the best count as equal and go
 * to the candidate nearest the initial scale — so rounding differences between partitionings of the data
 * (chunk sums added in another grouping) do not flip the choice between equally good scales.
 *
 * <p>The data never passes through here: a {@link BlockEvaluator} scores a candidate block over all search
 * samples — a Spark job (tasks per data chunk, {@link CandidateScores#merge}) or {@link #runLocal}.
 */
public final class AlternatingSearch {

    private AlternatingSearch() {}

    /**
     * @param alpha, beta, segments  the grid [αS, βS] in n segments
     * @param rounds                  K, the most alternations
     * @param epsilon                 stop when a round raises the mean cosine by less than this
     * @param blockSize               candidates per block (per task)
     * @param tieTolerance            mean-cosine difference below which two candidates tie
     */
    public record Options(double alpha, double beta, int segments, int rounds, double epsilon, int blockSize,
                          double tieTolerance) implements Serializable {
        public Options {
            new ScaleGrid(1.0, alpha, beta, segments); // validates the grid parameters
            if (rounds < 1 || blockSize < 1 || !(epsilon >= 0) || !(tieTolerance >= 0)) {
                throw new IllegalArgumentException("AlternatingSearch.Options: need rounds >= 1, blockSize >= 1, epsilon >= 0, "
                        + "tieTolerance >= 0; got " + rounds + ", " + blockSize + ", " + epsilon + ", " + tieTolerance);
            }
        }

        /** α = 0.5, β = 2, n = 100, K = 3, ε = 1e-6, 16 candidates per block, ties within 1e-9. */
        public static Options defaults() {
            return new Options(ScaleGrid.DEFAULT_ALPHA, ScaleGrid.DEFAULT_BETA, ScaleGrid.DEFAULT_SEGMENTS, 3, 1e-6, 16, 1e-9);
        }

        public Options withRounds(int k) {
            return new Options(alpha, beta, segments, k, epsilon, blockSize, tieTolerance);
        }

        public Options withBlockSize(int b) {
            return new Options(alpha, beta, segments, rounds, epsilon, b, tieTolerance);
        }

        public Options withGrid(double a, double b, int n) {
            return new Options(a, b, n, rounds, epsilon, blockSize, tieTolerance);
        }
    }

    /** Scores a candidate block over all search samples of the layer (all chunks merged in sample order). */
    @FunctionalInterface
    public interface BlockEvaluator {
        CandidateScores evaluate(CandidateBlock block);
    }

    /** One round: the scales and mean cosine after its weight step and after its activation step. */
    public record Round(int round, double[] weightScales, double cosineAfterWeight, double activationScale,
                        double cosineAfterActivation) implements Serializable {
        public Round {
            weightScales = weightScales.clone();
        }

        @Override
        public double[] weightScales() {
            return weightScales.clone();
        }

        @Override
        public String toString() {
            return "Round[" + round + ": Sw " + Arrays.toString(weightScales) + " -> cos " + cosineAfterWeight + ", Sa "
                    + activationScale + " -> cos " + cosineAfterActivation + "]";
        }
    }

    /**
     * @param weight          the chosen weight parameters (the template's grid and zero points)
     * @param activation      the chosen activation parameters
     * @param initialCosine   mean per-sample cosine with the initial scales (scale table: metric_baseline)
     * @param finalCosine     mean per-sample cosine with the chosen scales (scale table: metric_value)
     * @param samples         number of search samples
     * @param history         the rounds run, in order
     */
    public record Result(QuantParams weight, QuantParams activation, double initialCosine, double finalCosine,
                         int samples, List<Round> history) implements Serializable {
        public Result {
            history = List.copyOf(history);
        }
    }

    /** The search for one layer, starting from (and with grids around) the initial parameters. */
    public static Result run(QuantParams initialWeight, QuantParams initialActivation, BlockEvaluator evaluator, Options o) {
        if (initialActivation.perChannel()) {
            throw new IllegalArgumentException("EasyQuant searches a per-tensor activation scale, got axis " + initialActivation.axis());
        }
        double[] w0 = initialWeight.scale();
        double a0 = initialActivation.scale()[0];
        ScaleGrid[] wGrids = new ScaleGrid[w0.length];
        for (int c = 0; c < w0.length; c++) wGrids[c] = new ScaleGrid(w0[c], o.alpha(), o.beta(), o.segments());
        ScaleGrid aGrid = new ScaleGrid(a0, o.alpha(), o.beta(), o.segments());

        CandidateScores init = evaluator.evaluate(CandidateBlock.perTensor(SearchSide.ACTIVATION, w0, a0));
        int count = init.count();
        if (count == 0) throw new IllegalArgumentException("EasyQuant: no search samples");
        double tie = o.tieTolerance() * count;
        double[] w = w0.clone();
        double a = a0;
        double objective = init.sum(0, 0);     // Σ_i cos, the mean times count
        double initial = objective;
        List<Round> history = new ArrayList<>();

        for (int round = 1; round <= o.rounds(); round++) {
            double roundStart = objective;
            // S_w with S_a fixed
            if (!initialWeight.perChannel()) {
                double[] cands = withCurrent(wGrids[0].candidates(), w[0]);
                double[][] sums = evaluateAll(evaluator, SearchSide.WEIGHT, new double[] {a}, column(cands), o.blockSize());
                int best = best(sums, 0, cands, w0[0], tie);
                if (sums[best][0] > objective) {
                    w = new double[] {cands[best]};
                    objective = sums[best][0];
                }
            } else {
                int n = o.segments() + 1;
                double[][] cands = new double[n + 1][w.length];
                for (int k = 0; k < n; k++) for (int c = 0; c < w.length; c++) cands[k][c] = wGrids[c].candidate(k);
                cands[n] = w.clone();
                double[][] sums = evaluateAll(evaluator, SearchSide.WEIGHT, new double[] {a}, cands, o.blockSize());
                double[] proposal = new double[w.length];
                for (int c = 0; c < w.length; c++) {
                    double[] channelCands = new double[n + 1];
                    for (int k = 0; k <= n; k++) channelCands[k] = cands[k][c];
                    proposal[c] = channelCands[best(sums, c, channelCands, w0[c], o.tieTolerance() * count)];
                }
                if (!Arrays.equals(proposal, w)) {
                    double whole = evaluator.evaluate(CandidateBlock.perTensor(SearchSide.ACTIVATION, proposal, a)).sum(0, 0);
                    if (whole > objective) {
                        w = proposal;
                        objective = whole;
                    }
                }
            }
            double afterWeight = objective;
            // S_a with S_w fixed
            double[] cands = withCurrent(aGrid.candidates(), a);
            double[][] sums = evaluateAll(evaluator, SearchSide.ACTIVATION, w, column(cands), o.blockSize());
            int best = best(sums, 0, cands, a0, tie);
            if (sums[best][0] > objective) {
                a = cands[best];
                objective = sums[best][0];
            }
            history.add(new Round(round, w, afterWeight / count, a, objective / count));
            if ((objective - roundStart) / count < o.epsilon()) break;
        }
        return new Result(initialWeight.withScales(w), initialActivation.withScales(new double[] {a}), initial / count,
                objective / count, count, history);
    }

    /**
     * The whole search in this JVM over the chunks of one layer's captured data (same layer, same templates):
     * each block is evaluated on every chunk and the partial scores merged in sample order, as the job does.
     */
    public static Result runLocal(List<LayerProblem> chunks, Options o) {
        if (chunks.isEmpty()) throw new IllegalArgumentException("AlternatingSearch.runLocal: no chunks");
        LayerProblem first = chunks.get(0);
        for (LayerProblem p : chunks) {
            if (!p.weight().equals(first.weight()) || !p.activation().equals(first.activation())) {
                throw new IllegalArgumentException("AlternatingSearch.runLocal: chunk of layer " + p.layer()
                        + " has other initial parameters than the first chunk of " + first.layer());
            }
        }
        return run(first.weight(), first.activation(), block -> {
            List<CandidateScores> parts = new ArrayList<>(chunks.size());
            for (LayerProblem p : chunks) parts.add(CandidateEvaluation.evaluate(p, block));
            return CandidateScores.merge(parts);
        }, o);
    }

    /** Scores for all candidates, block by block, concatenated: [candidate][channel or 0]. */
    static double[][] evaluateAll(BlockEvaluator evaluator, SearchSide side, double[] fixed, double[][] cands, int blockSize) {
        double[][] out = new double[cands.length][];
        for (int b0 = 0; b0 < cands.length; b0 += blockSize) {
            double[][] block = Arrays.copyOfRange(cands, b0, Math.min(cands.length, b0 + blockSize));
            CandidateScores s = evaluator.evaluate(new CandidateBlock(side, fixed, block));
            for (int i = 0; i < block.length; i++) out[b0 + i] = s.cosineSums()[i].clone();
        }
        return out;
    }

    /**
     * Arg max of column {@code col}; scores within {@code tie} of the maximum tie, and among those the
     * candidate nearest {@code initial} wins (then the lower index).
     */
    static int best(double[][] sums, int col, double[] cands, double initial, double tie) {
        double max = Double.NEGATIVE_INFINITY;
        for (double[] s : sums) max = Math.max(max, s[col]);
        int best = -1;
        for (int k = 0; k < sums.length; k++) {
            if (sums[k][col] < max - tie) continue;
            if (best < 0 || Math.abs(cands[k] - initial) < Math.abs(cands[best] - initial)) best = k;
        }
        return best;
    }

    private static double[] withCurrent(double[] grid, double current) {
        double[] c = Arrays.copyOf(grid, grid.length + 1);
        c[grid.length] = current;
        return c;
    }

    private static double[][] column(double[] v) {
        double[][] c = new double[v.length][];
        for (int i = 0; i < v.length; i++) c[i] = new double[] {v[i]};
        return c;
    }
}
