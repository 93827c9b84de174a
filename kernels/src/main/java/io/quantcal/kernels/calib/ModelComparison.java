package io.quantcal.kernels.calib;

import io.quantcal.kernels.runtime.InputTensor;
import io.quantcal.kernels.runtime.ModelInputs;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.SampleInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One evaluation task: run the FP32 and the quantized model on the same samples and gather mergeable
 * sums: top-1 hits of each against the labels, top-1 agreement, the output's signal and noise energy
 * (for SQNR), per-sample cosine, and per layer the signal and noise energy of the layer's output and the sums its
 * cosine needs.
 */
public final class ModelComparison {

    private ModelComparison() {}

    /** A sample (its values for every model input) with its label (−1 when unknown). */
    public record Labelled(SampleInputs inputs, int label) implements Serializable {

        /** A sample of a single float input. */
        public Labelled(float[] values, int label) {
            this(SampleInputs.of(values), label);
        }
    }

    /**
     * Sums over samples; merge adds them. {@code layers} maps tensor → {Σ a², Σ (a − b)², Σ a·b, Σ b²} over every
     * element of the layer's output in all samples, a the FP model's and b the quantized model's: SQNR from the first
     * two, the cosine of the two outputs as vectors over the whole data from the others ({@link #cosine}).
     */
    public record Sums(long samples, long labelled, long fpCorrect, long quantCorrect, long agree, double signal,
                       double noise, double cosineSum, double outputDot, double outputQuantEnergy, long outputValues,
                       Map<String, double[]> layers) implements Serializable {

        public static Sums empty() {
            return new Sums(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, new LinkedHashMap<>());
        }

        /** These sums with other layer sums (the output's stay). */
        public Sums withLayers(Map<String, double[]> other) {
            return new Sums(samples, labelled, fpCorrect, quantCorrect, agree, signal, noise, cosineSum, outputDot,
                    outputQuantEnergy, outputValues, other);
        }

        public Sums merge(Sums o) {
            Map<String, double[]> l = new LinkedHashMap<>();
            layers.forEach((k, v) -> l.put(k, v.clone()));
            o.layers.forEach((k, v) -> l.merge(k, v.clone(), (a, b) -> {
                double[] c = a.clone();
                for (int i = 0; i < c.length; i++) c[i] += b[i];
                return c;
            }));
            return new Sums(samples + o.samples, labelled + o.labelled, fpCorrect + o.fpCorrect,
                    quantCorrect + o.quantCorrect, agree + o.agree, signal + o.signal, noise + o.noise,
                    cosineSum + o.cosineSum, outputDot + o.outputDot, outputQuantEnergy + o.outputQuantEnergy,
                    outputValues + o.outputValues, l);
        }

        public double fpAccuracy() {
            return labelled == 0 ? Double.NaN : (double) fpCorrect / labelled;
        }

        public double quantAccuracy() {
            return labelled == 0 ? Double.NaN : (double) quantCorrect / labelled;
        }

        public double agreement() {
            return samples == 0 ? Double.NaN : (double) agree / samples;
        }

        public double sqnrDb() {
            return sqnr(signal, noise);
        }

        /**
         * The output's cosine: the mean over samples of each sample's output vectors' cosine; when each sample's output
         * is one value (a detector's speech probability), whose cosine is only its sign, the cosine of the two outputs
         * as vectors over all samples instead.
         */
        public double meanCosine() {
            if (samples == 0) return Double.NaN;
            if (outputValues == samples) return cosine(new double[] {signal, noise, outputDot, outputQuantEnergy});
            return cosineSum / samples;
        }

        public static double sqnr(double signal, double noise) {
            // an all-zero output reproduced exactly has no signal to speak of (torchvision's ViTs start with a zero
            // head): NaN, which the reports show as n/a, not an infinite ratio
            if (noise == 0) return signal == 0 ? Double.NaN : Double.POSITIVE_INFINITY;
            return 10 * Math.log10(signal / noise);
        }

        /** A layer's cosine from its sums {Σ a², Σ (a − b)², Σ a·b, Σ b²}: Σ a·b / √(Σ a² · Σ b²); 1 when both are 0. */
        public static double cosine(double[] layer) {
            double aa = layer[0], ab = layer[2], bb = layer[3];
            if (aa == 0 && bb == 0) return 1;
            return aa == 0 || bb == 0 ? 0 : ab / Math.sqrt(aa * bb);
        }
    }

    /**
     * @param layerTensors tensors present in both models (layer outputs) whose SQNR to measure; both runners
     *                     must capture them
     */
    public static Sums compare(ModelRunner fp, ModelRunner quant, String inputName, String outputName,
                               long[] sampleShape, Iterator<Labelled> samples, int batchSize, List<String> layerTensors) {
        return compare(fp, quant, ModelInputs.singleFloat(inputName, sampleShape), outputName, samples,
                BatchBudget.fixed(batchSize), "", layerTensors, layerTensors);
    }

    /** {@link #compare(ModelRunner, ModelRunner, ModelInputs, String, Iterator, BatchBudget, String, List, List)} with
     * a fixed batch size and the same layer tensor names in both models. */
    public static Sums compare(ModelRunner fp, ModelRunner quant, ModelInputs inputs, String outputName,
                               Iterator<Labelled> samples, int batchSize, List<String> layerTensors) {
        return compare(fp, quant, inputs, outputName, samples, BatchBudget.fixed(batchSize), "", layerTensors,
                layerTensors);
    }

    /**
     * Batches sized by a memory budget ({@link BatchBudget}): one sample's bytes are what both models return for it
     * (output and layer outputs) plus its input, measured on a first run of one sample; 1 when the model fixes its
     * batch dimension to 1.
     *
     * @param inputs            the model inputs every sample feeds
     * @param what              names the run in a memory error
     * @param layerTensors      layer outputs of the FP model whose SQNR to measure (the keys of the result)
     * @param quantLayerTensors the same layers' outputs in the quantized model, position by position (a name
     *                          differs where the export folded the layer's Relu/Clip into its output quantization)
     * @throws CaptureOverBudget when one sample's returned tensors exceed the budget: each layer pair's bytes (FP and
     *     quantized output, keyed by the FP name), the inputs and both models' outputs counted as the fixed part
     */
    public static Sums compare(ModelRunner fp, ModelRunner quant, ModelInputs inputs, String outputName,
                               Iterator<Labelled> samples, BatchBudget budget, String what, List<String> layerTensors,
                               List<String> quantLayerTensors) {
        int cap = inputs.runBatch(budget.maxBatch());
        Sums acc = Sums.empty();
        boolean measured = budget.unlimited() || cap == 1;
        int size = measured ? cap : 1;
        List<Labelled> batch = new ArrayList<>(size);
        // no output (null): every output's shape depends on the data (a detector's boxes); the layers only
        List<String> fpNames = new ArrayList<>(outputName == null ? List.of() : List.of(outputName));
        List<String> quantNames = new ArrayList<>(fpNames);
        fpNames.addAll(layerTensors);
        quantNames.addAll(quantLayerTensors);
        // both models' tensors read where ONNX Runtime wrote them (buffers each runner lends): no heap copy of every
        // layer's output per batch (at 224x224 a batch's are hundreds of MB); the batches, and so every sum, as before
        Map<String, java.nio.ByteBuffer> a = new java.util.HashMap<>(), b = new java.util.HashMap<>();
        float[] u = new float[CHUNK], v = new float[CHUNK];
        try (ModelRunner.PinnedBuffers pa = fp.pinned(fpNames); ModelRunner.PinnedBuffers pb = quant.pinned(quantNames)) {
            while (samples.hasNext()) {
                batch.add(samples.next());
                if (batch.size() == size || !samples.hasNext()) {
                    List<SampleInputs> values = new ArrayList<>(batch.size());
                    for (Labelled l : batch) values.add(l.inputs());
                    Map<String, InputTensor> x = inputs.stack(values);
                    long bytes = fp.runPinned(x, pa, a::put) + quant.runPinned(x, pb, b::put);
                    if (!measured) {
                        int k = batch.size();
                        long perSample = (bytes + Batches.inputBytes(x)) / k;
                        if (!budget.fits(perSample)) {
                            // what each layer pair takes, so that the caller can compare the layers in groups
                            Map<String, Long> perLayer = new LinkedHashMap<>();
                            for (int l = 0; l < layerTensors.size(); l++) {
                                perLayer.merge(layerTensors.get(l), ((long) a.get(layerTensors.get(l)).remaining()
                                        + b.get(quantLayerTensors.get(l)).remaining()) / k, Long::sum);
                            }
                            long fixed = (Batches.inputBytes(x) + (outputName == null ? 0
                                    : a.get(outputName).remaining() + b.get(outputName).remaining())) / k;
                            CaptureOverBudget.check(budget, perSample, what, perLayer, fixed);
                        }
                        size = Math.min(cap, budget.batchSize(perSample, what));
                        measured = true;
                    }
                    acc = acc.merge(sums(a, b, outputName, batch, layerTensors, quantLayerTensors, u, v));
                    batch.clear();
                }
            }
        }
        return acc;
    }

    /** Values per chunk copied out of a buffer for the per-layer sums. */
    private static final int CHUNK = 4096;

    private static Sums sums(Map<String, java.nio.ByteBuffer> a, Map<String, java.nio.ByteBuffer> b, String outputName,
                             List<Labelled> batch, List<String> layerTensors, List<String> quantLayerTensors,
                             float[] u, float[] v) {
        int n = batch.size();
        long labelled = 0, fpHit = 0, qHit = 0, agree = 0;
        double sig = 0, noise = 0, cos = 0, outDot = 0, outQuant = 0;
        long outValues = 0;
        java.nio.FloatBuffer ya = outputName == null ? null : a.get(outputName).asFloatBuffer();
        java.nio.FloatBuffer yb = outputName == null ? null : b.get(outputName).asFloatBuffer();
        int k = ya == null ? 0 : ya.remaining() / n;
        if (ya != null && (ya.remaining() != yb.remaining() || ya.remaining() % n != 0)) {
            throw new io.quantcal.kernels.onnx.ModelException("output " + outputName + " holds " + ya.remaining()
                    + " values in the FP32 model and " + yb.remaining() + " in the quantized one for the same " + n
                    + " samples: its shape depends on the data, it cannot be compared value by value");
        }
        for (int i = 0; ya != null && i < n; i++) {
            int ta = argmax(ya, i * k, k), tb = argmax(yb, i * k, k);
            int label = batch.get(i).label();
            if (label >= 0) {
                labelled++;
                if (ta == label) fpHit++;
                if (tb == label) qHit++;
            }
            if (ta == tb) agree++;
            double dot = 0, na = 0, nb = 0;
            for (int j = i * k; j < (i + 1) * k; j++) {
                double p = ya.get(j), q = yb.get(j);
                dot += p * q;
                na += p * p;
                nb += q * q;
                sig += p * p;
                noise += (p - q) * (p - q);
            }
            cos += na == 0 && nb == 0 ? 1 : (na == 0 || nb == 0 ? 0 : dot / Math.sqrt(na * nb));
            outDot += dot;
            outQuant += nb;
            outValues += k;
        }
        Map<String, double[]> layers = new LinkedHashMap<>();
        for (int l = 0; l < layerTensors.size(); l++) {
            String t = layerTensors.get(l);
            java.nio.FloatBuffer fa = a.get(t).asFloatBuffer(), fb = b.get(quantLayerTensors.get(l)).asFloatBuffer();
            int len = fa.remaining();
            if (fb.remaining() != len) {
                throw new IllegalStateException("layer output " + t + " holds " + len + " values in the FP model and "
                        + fb.remaining() + " in the quantized one");
            }
            double s = 0, e = 0, ab = 0, bb = 0;
            for (int from = 0; from < len; from += CHUNK) {
                int c = Math.min(CHUNK, len - from);
                fa.get(from, u, 0, c);
                fb.get(from, v, 0, c);
                for (int j = 0; j < c; j++) {
                    s += (double) u[j] * u[j];
                    e += (double) (u[j] - v[j]) * (u[j] - v[j]);
                    ab += (double) u[j] * v[j];
                    bb += (double) v[j] * v[j];
                }
            }
            layers.put(t, new double[] {s, e, ab, bb});
        }
        return new Sums(n, labelled, fpHit, qHit, agree, sig, noise, cos, outDot, outQuant, outValues, layers);
    }

    static int argmax(java.nio.FloatBuffer v, int from, int len) {
        int best = 0;
        for (int j = 1; j < len; j++) if (v.get(from + j) > v.get(from + best)) best = j;
        return best;
    }

}
