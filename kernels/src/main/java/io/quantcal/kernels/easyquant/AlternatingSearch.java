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
 * to the candidate nearest the initial scale — so rounding differences between chunkings of the data
 * (chunk sums added in another grouping, e.g. another {@code easyquant.chunk-samples}) do not flip the choice
 * between equally good scales. The job's chunks are fixed by sample id, so the partitioning changes no sum.
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
        Stepper s = new Stepper(initialWeight, initialActivation, o);
        while (!s.done()) {
            List<CandidateBlock> blocks = s.pending();
            List<CandidateScores> scores = new ArrayList<>(blocks.size());
            for (CandidateBlock b : blocks) scores.add(evaluator.evaluate(b));
            s.accept(scores);
        }
        return s.result();
    }

    /**
     * The search for one layer as a sequence of steps, so that a driver can score the pending blocks of many
     * layers together (the job scores one step of every layer in one Spark job): {@link #pending()} lists the
     * blocks of the current step, {@link #accept} takes their scores (merged over all samples) in that order
     * and moves on. The steps: the initial scales; per round, the weight grid (per-channel weights: then the
     * combined per-channel proposal, when it differs from the current scales), then the activation grid.
     * {@link #run} drives it with one evaluator; the result is the same however the blocks are scored.
     */
    public static final class Stepper {
        private enum Step { INITIAL, WEIGHT, PROPOSAL, ACTIVATION, DONE }

        private final QuantParams initialWeight;
        private final QuantParams initialActivation;
        private final Options o;
        private final double[] w0;
        private final double a0;
        private final ScaleGrid[] wGrids;
        private final ScaleGrid aGrid;
        private final List<Round> history = new ArrayList<>();
        private Step step = Step.INITIAL;
        private int round = 0;
        private int count;
        private double[] w;
        private double a;
        private double objective;      // Σ_i cos, the mean times count
        private double initial;
        private double roundStart;
        private double afterWeight;
        private double[][] cands;      // the current grid step's candidates, [candidate][channel or 0]
        private double[] proposal;
        private List<CandidateBlock> pending;

        public Stepper(QuantParams initialWeight, QuantParams initialActivation, Options o) {
            if (initialActivation.perChannel()) {
                throw new IllegalArgumentException("EasyQuant searches a per-tensor activation scale, got axis " + initialActivation.axis());
            }
            this.initialWeight = initialWeight;
            this.initialActivation = initialActivation;
            this.o = o;
            w0 = initialWeight.scale();
            a0 = initialActivation.scale()[0];
            wGrids = new ScaleGrid[w0.length];
            for (int c = 0; c < w0.length; c++) wGrids[c] = new ScaleGrid(w0[c], o.alpha(), o.beta(), o.segments());
            aGrid = new ScaleGrid(a0, o.alpha(), o.beta(), o.segments());
            w = w0.clone();
            a = a0;
            pending = List.of(CandidateBlock.perTensor(SearchSide.ACTIVATION, w0, a0));
        }

        public boolean done() {
            return step == Step.DONE;
        }

        /**
         * What {@link #pending()} scores, in the paper's words: "initial scales", "weight grid" (Sw of a round),
         * "per-channel proposal" (every channel's best Sw at once), "activation grid" (Sa), or "done".
         */
        public String stepName() {
            return switch (step) {
                case INITIAL -> "initial scales";
                case WEIGHT -> "weight grid";
                case PROPOSAL -> "per-channel proposal";
                case ACTIVATION -> "activation grid";
                case DONE -> "done";
            };
        }

        /** The blocks to score now, in order; empty when done. */
        public List<CandidateBlock> pending() {
            return pending;
        }

        /** The scores of {@link #pending()}, in its order, each over all search samples. */
        public void accept(List<CandidateScores> scores) {
            if (done()) throw new IllegalStateException("AlternatingSearch: the search is done");
            if (scores.size() != pending.size()) {
                throw new IllegalArgumentException("AlternatingSearch: " + pending.size() + " blocks pending, got "
                        + scores.size() + " scores");
            }
            switch (step) {
                case INITIAL -> {
                    count = scores.get(0).count();
                    if (count == 0) throw new IllegalArgumentException("EasyQuant: no search samples");
                    objective = scores.get(0).sum(0, 0);
                    initial = objective;
                    startRound();
                }
                case WEIGHT -> {
                    double[][] sums = concat(scores);
                    double tie = o.tieTolerance() * count;
                    if (!initialWeight.perChannel()) {
                        double[] c = column0(cands);
                        int best = best(sums, 0, c, w0[0], tie);
                        if (sums[best][0] > objective) {
                            w = new double[] {c[best]};
                            objective = sums[best][0];
                        }
                        startActivation();
                    } else {
                        proposal = new double[w.length];
                        for (int ch = 0; ch < w.length; ch++) {
                            double[] channelCands = new double[cands.length];
                            for (int k = 0; k < cands.length; k++) channelCands[k] = cands[k][ch];
                            proposal[ch] = channelCands[best(sums, ch, channelCands, w0[ch], tie)];
                        }
                        if (Arrays.equals(proposal, w)) {
                            startActivation();
                        } else {
                            step = Step.PROPOSAL;
                            pending = List.of(CandidateBlock.perTensor(SearchSide.ACTIVATION, proposal, a));
                        }
                    }
                }
                case PROPOSAL -> {
                    double whole = scores.get(0).sum(0, 0);
                    if (whole > objective) {
                        w = proposal;
                        objective = whole;
                    }
                    startActivation();
                }
                case ACTIVATION -> {
                    double[][] sums = concat(scores);
                    double[] c = column0(cands);
                    int best = best(sums, 0, c, a0, o.tieTolerance() * count);
                    if (sums[best][0] > objective) {
                        a = c[best];
                        objective = sums[best][0];
                    }
                    history.add(new Round(round, w, afterWeight / count, a, objective / count));
                    if ((objective - roundStart) / count < o.epsilon() || round == o.rounds()) {
                        step = Step.DONE;
                        pending = List.of();
                    } else {
                        startRound();
                    }
                }
                default -> throw new IllegalStateException("AlternatingSearch: step " + step);
            }
        }

        public Result result() {
            if (!done()) throw new IllegalStateException("AlternatingSearch: the search is not done");
            return new Result(initialWeight.withScales(w), initialActivation.withScales(new double[] {a}), initial / count,
                    objective / count, count, history);
        }

        private void startRound() {
            round++;
            roundStart = objective;
            step = Step.WEIGHT;
            if (!initialWeight.perChannel()) {
                cands = column(withCurrent(wGrids[0].candidates(), w[0]));
            } else {
                int n = o.segments() + 1;
                cands = new double[n + 1][w.length];
                for (int k = 0; k < n; k++) for (int c = 0; c < w.length; c++) cands[k][c] = wGrids[c].candidate(k);
                cands[n] = w.clone();
            }
            pending = blocks(SearchSide.WEIGHT, new double[] {a}, cands, o.blockSize());
        }

        private void startActivation() {
            afterWeight = objective;
            step = Step.ACTIVATION;
            cands = column(withCurrent(aGrid.candidates(), a));
            pending = blocks(SearchSide.ACTIVATION, w, cands, o.blockSize());
        }
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

    /** The candidates cut into blocks of at most {@code blockSize}, in order. */
    static List<CandidateBlock> blocks(SearchSide side, double[] fixed, double[][] cands, int blockSize) {
        List<CandidateBlock> out = new ArrayList<>();
        for (int b0 = 0; b0 < cands.length; b0 += blockSize) {
            out.add(new CandidateBlock(side, fixed, Arrays.copyOfRange(cands, b0, Math.min(cands.length, b0 + blockSize))));
        }
        return out;
    }

    /** The blocks' scores concatenated: [candidate][channel or 0]. */
    static double[][] concat(List<CandidateScores> scores) {
        List<double[]> out = new ArrayList<>();
        for (CandidateScores s : scores) for (double[] c : s.cosineSums()) out.add(c.clone());
        return out.toArray(new double[0][]);
    }

    private static double[] column0(double[][] cands) {
        double[] c = new double[cands.length];
        for (int i = 0; i < c.length; i++) c[i] = cands[i][0];
        return c;
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
