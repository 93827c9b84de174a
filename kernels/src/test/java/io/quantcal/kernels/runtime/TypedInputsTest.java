package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.calib.ActivationStatistics;
import io.quantcal.kernels.calib.Batches;
import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.stats.TensorStats;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.junit.jupiter.api.Test;

/**
 * Samples of several inputs and of integer element types reach ONNX Runtime as tensors of the model's types, and the
 * captured activations are what a hand computation of the graph gives: an embedding lookup of int64 token ids masked
 * by an int64 attention mask; a model whose batch dimension is fixed to 1 runs one sample per call.
 */
class TypedInputsTest {

    static final int VOCAB = 7, DIM = 3, SEQ = 4, OUT = 2;

    /** A value info whose dimensions are numbers or, for strings, named symbolic dimensions. */
    static ValueInfoProto value(String name, TensorProto.DataType type, Object... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (Object d : dims) {
            shape.addDim(d instanceof String s ? TensorShapeProto.Dimension.newBuilder().setDimParam(s)
                    : TensorShapeProto.Dimension.newBuilder().setDimValue(((Number) d).longValue()));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape))).build();
    }

    static float[] embedding() {
        float[] e = new float[VOCAB * DIM];
        for (int i = 0; i < e.length; i++) e[i] = (i % 5 - 2) * 0.75f + i * 0.125f;
        return e;
    }

    static float[] weight() {
        return new float[] {0.5f, -1f, 0.25f, 2f, -0.75f, 0.125f};
    }

    /** ids --Gather(embedding)--> e; mask --Cast--> --Unsqueeze--> m; h = e * m; y = h · W. */
    static OnnxModel embeddingModel(TensorProto.DataType idsType) {
        var nodes = List.of(
                Graphs.node("Gather", "embed", List.of("emb", "ids"), List.of("e"), Map.of("axis", 0L)),
                Graphs.node("Cast", "mask_f", List.of("mask"), List.of("mf"), Map.of("to", 1L)),
                Graphs.node("Unsqueeze", "mask_u", List.of("mf", "axes"), List.of("m")),
                Graphs.node("Mul", "masked", List.of("e", "m"), List.of("h")),
                Graphs.node("MatMul", "proj", List.of("h", "w"), List.of("y")));
        var inits = List.of(Graphs.floatTensor("emb", embedding(), VOCAB, DIM), Graphs.floatTensor("w", weight(), DIM, OUT),
                Graphs.int64Tensor("axes", new long[] {2}, 1));
        return OnnxModel.parse("models/embed.onnx", Graphs.model(13, nodes, inits,
                List.of(value("ids", idsType, "batch", "seq"), value("mask", TensorProto.DataType.INT64, "batch", "seq")),
                List.of(value("y", TensorProto.DataType.FLOAT, "batch", "seq", OUT))).toByteArray(), ExternalDataResolver.none());
    }

    static List<SampleInputs> tokens(int n, boolean int32) {
        Random r = new Random(11);
        List<SampleInputs> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            long[] ids = new long[SEQ];
            long[] mask = new long[SEQ];
            for (int t = 0; t < SEQ; t++) {
                ids[t] = r.nextInt(VOCAB);
                mask[t] = t < 1 + k % SEQ ? 1 : 0;
            }
            int[] ids32 = new int[SEQ];
            for (int t = 0; t < SEQ; t++) ids32[t] = (int) ids[t];
            out.add(SampleInputs.of(int32 ? ids32 : ids, mask));
        }
        return out;
    }

    /** h of one sample, by hand: the embedding row of each id times its mask bit. */
    static float[] hidden(SampleInputs s) {
        float[] e = embedding();
        float[] h = new float[SEQ * DIM];
        for (int t = 0; t < SEQ; t++) {
            long id = s.get(0) instanceof long[] l ? l[t] : ((int[]) s.get(0))[t];
            long m = ((long[]) s.get(1))[t];
            for (int d = 0; d < DIM; d++) h[t * DIM + d] = e[(int) id * DIM + d] * m;
        }
        return h;
    }

    static ModelInputs tokenInputs(ElementType ids) {
        return new ModelInputs(List.of(new ModelInputs.Input("ids", ids, new long[] {SEQ}),
                new ModelInputs.Input("mask", ElementType.INT64, new long[] {SEQ})), 0);
    }

    @Test
    void int64AndInt32TokenIdsGiveTheHandComputedMaskedEmbeddings() {
        for (boolean int32 : new boolean[] {false, true}) {
            OnnxModel m = embeddingModel(int32 ? TensorProto.DataType.INT32 : TensorProto.DataType.INT64);
            ModelInputs inputs = tokenInputs(int32 ? ElementType.INT32 : ElementType.INT64);
            List<SampleInputs> samples = tokens(7, int32);
            double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
            for (SampleInputs s : samples) {
                for (float v : hidden(s)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
            try (ModelRunner r = ModelRunner.open(m, List.of("h"), RunnerOptions.singleThreaded())) {
                ActivationStatistics.Partial p = ActivationStatistics.collect(r, inputs, samples.iterator(), 3, List.of("h"),
                        Map.of());
                TensorStats st = p.stats().get("h");
                assertEquals(7, p.samples());
                assertEquals(lo, st.minMax().min(), 0.0, "min of the masked embeddings");
                assertEquals(hi, st.minMax().max(), 0.0, "max of the masked embeddings");

                // the model output, sample by sample, against h · W by hand
                List<float[]> ys = new ArrayList<>();
                Batches.forEach(r, inputs, samples.iterator(), 3, out -> {
                    float[] y = out.get("y").data();
                    for (int k = 0; k < y.length / (SEQ * OUT); k++) {
                        ys.add(java.util.Arrays.copyOfRange(y, k * SEQ * OUT, (k + 1) * SEQ * OUT));
                    }
                });
                float[] w = weight();
                for (int k = 0; k < samples.size(); k++) {
                    float[] h = hidden(samples.get(k));
                    for (int t = 0; t < SEQ; t++) {
                        for (int o = 0; o < OUT; o++) {
                            double want = 0;
                            for (int d = 0; d < DIM; d++) want += (double) h[t * DIM + d] * w[d * OUT + o];
                            assertEquals(want, ys.get(k)[t * OUT + o], 1e-5, "y[" + k + "][" + t + "][" + o + "]");
                        }
                    }
                }
            }
        }
    }

    @Test
    void aWrongElementTypeIsNamedBeforeOnnxRuntimeRuns() {
        OnnxModel m = embeddingModel(TensorProto.DataType.INT64);
        ModelInputs wrong = tokenInputs(ElementType.INT32);
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            String msg = assertThrows(ModelException.class, () -> r.runInputs(wrong.stack(tokens(2, true)))).getMessage();
            assertEquals("models/embed.onnx: graph input ids is an int64 tensor, given an int32 tensor", msg);
        }
        String msg = assertThrows(IllegalArgumentException.class,
                () -> tokenInputs(ElementType.INT64).stack(List.of(SampleInputs.of(new long[3], new long[SEQ])))).getMessage();
        assertEquals("sample 0 of the batch for input ids has 3 int64 values, expected 4 int64 (ids int64 [N, 4])", msg);
    }

    @Test
    void aBatchFixedToOneRunsOneSampleAtATime() {
        // x [1, 5, 4] · W [4, 3]: the exporter fixed the batch dimension to 1
        float[] w = new float[12];
        for (int i = 0; i < w.length; i++) w[i] = (i % 4 - 1.5f) * 0.5f;
        OnnxModel m = OnnxModel.parse("models/fixed.onnx", Graphs.model(13,
                List.of(Graphs.node("MatMul", "mm", List.of("x", "w"), List.of("y"))),
                List.of(Graphs.floatTensor("w", w, 4, 3)), List.of(Graphs.floatValue("x", 1, 5, 4)),
                List.of(Graphs.floatValue("y", 1, 5, 3))).toByteArray(), ExternalDataResolver.none());
        ModelInputs inputs = new ModelInputs(List.of(new ModelInputs.Input("x", ElementType.FLOAT, new long[] {5, 4})), 1);
        assertEquals(1, inputs.runBatch(32));
        List<SampleInputs> samples = new ArrayList<>();
        Random r = new Random(3);
        for (int k = 0; k < 6; k++) {
            float[] x = new float[20];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            samples.add(SampleInputs.of(x));
        }
        List<float[]> ys = new ArrayList<>();
        try (ModelRunner runner = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            long n = Batches.forEach(runner, inputs, samples.iterator(), 4, out -> {
                assertArrayEquals(new long[] {1, 5, 3}, out.get("y").shape());
                ys.add(out.get("y").data());
            });
            assertEquals(6, n);
        }
        assertEquals(6, ys.size(), "one ONNX Runtime run per sample");
        for (int k = 0; k < 6; k++) {
            float[] x = samples.get(k).floats(0);
            for (int t = 0; t < 5; t++) {
                for (int o = 0; o < 3; o++) {
                    double want = 0;
                    for (int d = 0; d < 4; d++) want += (double) x[t * 4 + d] * w[d * 3 + o];
                    assertEquals(want, ys.get(k)[t * 3 + o], 1e-5);
                }
            }
        }
    }

    @Test
    void theDigestCoversEveryInputAndKeepsTheFloatBytesOfAnImage() throws Exception {
        float[] image = {0.5f, -1.25f, 3f};
        MessageDigest a = MessageDigest.getInstance("SHA-256");
        SampleInputs.of(image).digest(a);
        MessageDigest b = MessageDigest.getInstance("SHA-256");
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(12);
        buf.asFloatBuffer().put(image);
        b.update(buf.array());
        assertArrayEquals(b.digest(), a.digest(), "an image sample hashes its float bytes, as before");

        MessageDigest c = MessageDigest.getInstance("SHA-256");
        SampleInputs.of(new long[] {1, 2, 3}, new long[] {1, 1, 0}).digest(c);
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        SampleInputs.of(new long[] {1, 2, 3}, new long[] {1, 1, 1}).digest(d);
        assertNotEquals(java.util.HexFormat.of().formatHex(c.digest()), java.util.HexFormat.of().formatHex(d.digest()),
                "a change in the second input (the mask) changes the digest");
    }
}
