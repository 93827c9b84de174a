package io.quantcal.kernels.runtime;

import java.io.Serializable;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every input a sample feeds, in the model's input order, and the batch size the model accepts per ONNX Runtime run.
 * The first dimension of every input is the batch dimension; a model that fixes it to 1 (an exporter's
 * {@code [1, 25, 96]}) is run one sample at a time, whatever batch size the caller asks for.
 *
 * @param inputs     name, element type and one sample's shape (without the batch dimension) of each input
 * @param fixedBatch 1 when the model fixes the batch dimension to 1, 0 when it is dynamic
 */
public record ModelInputs(List<Input> inputs, int fixedBatch) implements Serializable {

    /**
     * One model input: its name, element type, one sample's shape (the batch dimension left out) and the axis of its
     * batch dimension: 0 as usual; another axis for a sequence-first input [T, N, F], fed one sample per run with a
     * batch of 1 there; −1 for an input without a batch dimension (torchvision's detection models take one image
     * [3, H, W] and batch it inside), fed one sample per run as the sample's shape itself.
     */
    public record Input(String name, ElementType type, long[] sampleShape, int batchAxis) implements Serializable {

        public Input(String name, ElementType type, long[] sampleShape) {
            this(name, type, sampleShape, 0);
        }

        /** Whether the input has a batch dimension (at {@link #batchAxis}). */
        public boolean batched() {
            return batchAxis >= 0;
        }

        public Input {
            sampleShape = sampleShape.clone();
            for (long d : sampleShape) {
                if (d <= 0) throw new IllegalArgumentException("input " + name + ": sample shape " + Arrays.toString(sampleShape)
                        + " has a dimension that is not a positive number");
            }
        }

        @Override
        public long[] sampleShape() {
            return sampleShape.clone();
        }

        /** Values per sample. */
        public int size() {
            long n = 1;
            for (long d : sampleShape) n *= d;
            if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("input " + name + ": " + n + " values per sample");
            return (int) n;
        }

        /** The full shape with the batch dimension: [batch, ...sampleShape]; the sample's shape when not batched. */
        public long[] shape(long batch) {
            if (batchAxis != 0) {
                if (batch != 1) {
                    throw new IllegalArgumentException("input " + name + (batchAxis < 0 ? " has no batch dimension"
                            : " has its batch at axis " + batchAxis) + ": one sample per run, not " + batch);
                }
                if (batchAxis < 0) return sampleShape.clone();
                long[] s = new long[sampleShape.length + 1];
                for (int d = 0, k = 0; d < s.length; d++) s[d] = d == batchAxis ? 1 : sampleShape[k++];
                return s;
            }
            long[] s = new long[sampleShape.length + 1];
            s[0] = batch;
            System.arraycopy(sampleShape, 0, s, 1, sampleShape.length);
            return s;
        }

        /** "input_ids int64 [N, 128]"; "x float32 [5, N, 3]"; "image float32 [3, 320, 320] (no batch dimension)". */
        public String describe() {
            return name + " " + type + " " + dims() + (batchAxis < 0 ? " (no batch dimension)" : "");
        }

        /** The fed shape with N at the batch axis: "[N, 128]", "[5, N, 3]"; "[3, 320, 320]" or "[]" without one. */
        public String dims() {
            List<String> dims = new java.util.ArrayList<>();
            for (long d : sampleShape) dims.add(String.valueOf(d));
            if (batchAxis >= 0) dims.add(batchAxis, "N");
            return "[" + String.join(", ", dims) + "]";
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Input i && name.equals(i.name) && type == i.type && Arrays.equals(sampleShape, i.sampleShape)
                    && batchAxis == i.batchAxis;
        }

        @Override
        public int hashCode() {
            return 31 * (31 * name.hashCode() + type.hashCode()) + Arrays.hashCode(sampleShape) + batchAxis;
        }
    }

    public ModelInputs {
        inputs = List.copyOf(inputs);
        if (inputs.isEmpty()) throw new IllegalArgumentException("a model needs at least one input to feed");
        if (fixedBatch != 0 && fixedBatch != 1) {
            throw new IllegalArgumentException("fixed batch " + fixedBatch + ": only a dynamic batch (0) or 1 is supported");
        }
        if (fixedBatch == 0 && inputs.stream().anyMatch(i -> i.batchAxis() != 0)) {
            throw new IllegalArgumentException("an input without a batch dimension, or with it at another axis than the"
                    + " first, is fed one sample per run: fixed batch 1");
        }
    }

    /** A single float input (an image model), dynamic batch. */
    public static ModelInputs singleFloat(String name, long[] sampleShape) {
        return new ModelInputs(List.of(new Input(name, ElementType.FLOAT, sampleShape)), 0);
    }

    /** Samples per ONNX Runtime run: {@code requested}, or 1 when the model fixes its batch dimension to 1. */
    public int runBatch(int requested) {
        return fixedBatch == 1 ? 1 : requested;
    }

    public List<String> names() {
        return inputs.stream().map(Input::name).toList();
    }

    /**
     * The samples stacked along the batch dimension: one tensor per input, keyed by input name, in the model's order.
     *
     * @throws IllegalArgumentException naming the sample (its index in the batch), the input, and what was expected,
     *     when a sample's values do not fit an input
     */
    public Map<String, InputTensor> stack(List<SampleInputs> samples) {
        int n = samples.size();
        for (int k = 0; k < n; k++) {
            SampleInputs s = samples.get(k);
            if (s.count() != inputs.size()) {
                throw new IllegalArgumentException("sample " + k + " of the batch has values for " + s.count()
                        + " inputs, the model has " + inputs.size() + " " + names());
            }
        }
        Map<String, InputTensor> out = new LinkedHashMap<>();
        for (int i = 0; i < inputs.size(); i++) {
            Input in = inputs.get(i);
            int size = in.size();
            Object data = java.lang.reflect.Array.newInstance(in.type().arrayClass().getComponentType(), Math.multiplyExact(size, n));
            for (int k = 0; k < n; k++) {
                SampleInputs s = samples.get(k);
                if (s.type(i) != in.type() || s.length(i) != size) {
                    throw new IllegalArgumentException("sample " + k + " of the batch for input " + in.name() + " has "
                            + s.length(i) + " " + s.type(i) + " values, expected " + size + " " + in.type() + " ("
                            + in.describe() + ")");
                }
                System.arraycopy(s.get(i), 0, data, k * size, size);
            }
            out.put(in.name(), new InputTensor(in.name(), in.type(), in.shape(n), data));
        }
        return out;
    }

    @Override
    public String toString() {
        return inputs.stream().map(Input::describe).toList() + (fixedBatch == 1 ? " (batch fixed to 1)" : "");
    }
}
