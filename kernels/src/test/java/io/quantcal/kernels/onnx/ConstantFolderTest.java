package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Weights the way exporters write them: torch.onnx's Identity in front of a deduplicated parameter, paddle2onnx's
 * Constant weights, a transposed, reshaped, unsqueezed or cast initializer. After folding every Conv/Gemm/MatMul is
 * quantizable, shared weights have one copy per consumer, and ONNX Runtime gives bit-identical outputs.
 */
class ConstantFolderTest {

    static TensorProto half(String name, float[] v, long... dims) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putShort(ConstantFolder.floatToHalf(f));
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT16_VALUE)
                .setRawData(ByteString.copyFrom(b.array()));
        for (long d : dims) t.addDims(d);
        return t.build();
    }

    static OnnxModel exporterQuirks(long opset) {
        Random r = new Random(3);
        List<NodeProto> nodes = new ArrayList<>();
        List<TensorProto> init = new ArrayList<>();
        float[] w = TestModels.gaussian(r, 4 * 4 * 9, 0.3);
        init.add(Graphs.floatTensor("conv.w", w, 4, 4, 3, 3));
        init.add(Graphs.floatTensor("conv.b", TestModels.gaussian(r, 4, 0.1), 4));
        // conv1 reads the parameters; conv2 the same ones through Identity (torch's deduplication)
        nodes.add(Graphs.node("Conv", "conv1", List.of("x", "conv.w", "conv.b"), List.of("c1"), Map.of("pads", new long[] {1, 1, 1, 1})));
        nodes.add(Graphs.node("Relu", "relu1", List.of("c1"), List.of("r1")));
        nodes.add(Graphs.node("Identity", "id_w", List.of("conv.w"), List.of("conv2.w")));
        nodes.add(Graphs.node("Identity", "id_b", List.of("conv.b"), List.of("conv2.b")));
        nodes.add(Graphs.node("Conv", "conv2", List.of("r1", "conv2.w", "conv2.b"), List.of("c2"), Map.of("pads", new long[] {1, 1, 1, 1})));
        // conv3: weight as a Constant node (paddle2onnx), bias a reshaped [1, 4] initializer
        TensorProto cw = Graphs.floatTensor("unused", TestModels.gaussian(r, 4 * 4 * 9, 0.3), 4, 4, 3, 3);
        nodes.add(Graphs.node("Constant", "const_w", List.of(), List.of("conv3.w"), Map.of("value", cw)));
        init.add(Graphs.floatTensor("conv3.b2d", TestModels.gaussian(r, 4, 0.1), 1, 4));
        init.add(Graphs.int64Tensor("shape4", new long[] {-1}, 1));
        nodes.add(Graphs.node("Reshape", "reshape_b", List.of("conv3.b2d", "shape4"), List.of("conv3.b")));
        nodes.add(Graphs.node("Conv", "conv3", List.of("c2", "conv3.w", "conv3.b"), List.of("c3"), Map.of("pads", new long[] {1, 1, 1, 1})));
        nodes.add(Graphs.node("Flatten", "flat", List.of("c3"), List.of("f")));
        // fc1: weight stored [K, N] and transposed in the graph; bias from Constant value_floats
        init.add(Graphs.floatTensor("fc.wT", TestModels.gaussian(r, 64 * 5, 0.2), 64, 5));
        nodes.add(Graphs.node("Transpose", "tr", List.of("fc.wT"), List.of("fc.w"), Map.of("perm", new long[] {1, 0})));
        float[] fb = TestModels.gaussian(r, 5, 0.1);
        nodes.add(Graphs.node("Constant", "const_b", List.of(), List.of("fc.b"), Map.of("value_floats", fb)));
        nodes.add(Graphs.node("Gemm", "fc1", List.of("f", "fc.w", "fc.b"), List.of("g1"), Map.of("transB", 1L)));
        // mm: a float16 weight cast to float, unsqueezed from [5] to [5, 1] then squeezed... to [5, 3] via Reshape
        init.add(half("mm.w16", TestModels.gaussian(r, 15, 0.5), 15));
        nodes.add(Graphs.node("Cast", "cast", List.of("mm.w16"), List.of("mm.w32"), Map.of("to", (long) TensorProto.DataType.FLOAT_VALUE)));
        if (opset >= 13) {
            init.add(Graphs.int64Tensor("ax0", new long[] {0}, 1));
            nodes.add(Graphs.node("Unsqueeze", "unsq", List.of("mm.w32", "ax0"), List.of("mm.w1")));
            nodes.add(Graphs.node("Squeeze", "sq", List.of("mm.w1", "ax0"), List.of("mm.wflat")));
        } else {
            nodes.add(Graphs.node("Unsqueeze", "unsq", List.of("mm.w32"), List.of("mm.w1"), Map.of("axes", new long[] {0})));
            nodes.add(Graphs.node("Squeeze", "sq", List.of("mm.w1"), List.of("mm.wflat"), Map.of("axes", new long[] {0})));
        }
        init.add(Graphs.int64Tensor("shape53b", new long[] {5, 3}, 2));
        nodes.add(Graphs.node("Reshape", "rs", List.of("mm.wflat", "shape53b"), List.of("mm.w")));
        nodes.add(Graphs.node("MatMul", "mm", List.of("g1", "mm.w"), List.of("m")));
        // fc2 and fc3 share one initializer: each gets its own copy
        init.add(Graphs.floatTensor("shared.w", TestModels.gaussian(r, 9, 0.4), 3, 3));
        nodes.add(Graphs.node("MatMul", "fc2", List.of("m", "shared.w"), List.of("y2")));
        nodes.add(Graphs.node("MatMul", "fc3", List.of("y2", "shared.w"), List.of("y")));
        return OnnxModel.parse("quirks.onnx", Graphs.model(opset, nodes, init,
                List.of(Graphs.floatValue("x", 2, 4, 4, 4)), List.of(Graphs.floatValue("y", 2, 3))).toByteArray(), null);
    }

    static float[] run(OnnxModel m, FloatTensor x) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(x).get("y").data();
        }
    }

    @Test
    void everyExporterFormOfAWeightBecomesAnInitializerAndTheOutputsAreUnchanged() {
        for (long opset : new long[] {11, 13}) {
            OnnxModel m = exporterQuirks(opset);
            assertEquals(3, m.quantizableNodes().size(), "before: only conv1, fc2 and fc3 have initializer weights");
            ConstantFolder.Result f = ConstantFolder.fold(m);
            List<String> found = f.model().quantizableNodes().stream().map(QuantizableNode::name).toList();
            assertEquals(List.of("conv1", "conv2", "conv3", "fc1", "mm", "fc2", "fc3"), found, "opset " + opset);
            assertEquals(10, f.foldedNodes(), f.foldedByOp().toString());
            assertEquals(2, f.foldedByOp().get("Identity"));
            assertEquals(2, f.foldedByOp().get("Constant"));
            assertEquals(List.of("shared.w -> shared.w__fc3"), f.unshared());
            assertEquals(List.of("flat"), f.model().nodes().stream().filter(n -> ConstantFolder.FOLDABLE.contains(n.getOpType()))
                    .map(NodeProto::getName).toList(), "only the Flatten of an activation stays");
            QuantizableNode conv2 = f.model().quantizableNodes().get(1);
            assertEquals("conv2.w", conv2.weight());
            assertArrayEquals(m.initializerFloats("conv.w"), f.model().initializerFloats("conv2.w"));
            // the same numbers, bit for bit, in ONNX Runtime
            FloatTensor x = FloatTensor.of("x", TestModels.gaussian(new Random(9), 2 * 64, 1.0), new long[] {2, 4, 4, 4});
            assertArrayEquals(run(m, x), run(f.model(), x), "opset " + opset);
        }
    }

    @Test
    void initializersListedAsGraphInputsAreInputsNoMore() {
        // IR 3 models list every initializer as a graph input; torch.onnx's keep_initializers_as_inputs=True does so at
        // any IR: folding reads them as constants and drops them from the inputs, and ONNX Runtime computes the same
        for (long ir : new long[] {3, 7}) {
            OnnxModel plain = TestModels.smallCnn(4);
            var g = plain.graph().toBuilder();
            for (TensorProto t : plain.graph().getInitializerList()) {
                g.addInput(Graphs.floatValue(t.getName(), Tensors.dims(t)));
            }
            OnnxModel m = OnnxModel.parse("kiai.onnx", plain.proto().toBuilder().setIrVersion(ir).setGraph(g).build()
                    .toByteArray(), null);
            ConstantFolder.Result f = ConstantFolder.fold(m);
            assertEquals(plain.graph().getInitializerList().stream().map(TensorProto::getName).toList(), f.initializerInputs());
            assertEquals(List.of("input"), f.model().graph().getInputList().stream().map(onnx.Onnx.ValueInfoProto::getName).toList(),
                    "IR " + ir);
            long[] xs = plain.shape("input").clone();
            xs[0] = 2;
            FloatTensor x = FloatTensor.of("input", TestModels.gaussian(new Random(2), TestModels.count(xs), 1.0), xs);
            String y = plain.graph().getOutput(0).getName();
            // bit for bit what the model computes without the listing (with it, ONNX Runtime does not fold the
            // BatchNormalizations into the Convs at IR 4 and above: the last bits differ)
            try (ModelRunner a = ModelRunner.open(plain, RunnerOptions.singleThreaded());
                 ModelRunner b = ModelRunner.open(f.model(), RunnerOptions.singleThreaded());
                 ModelRunner c = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
                float[] want = a.run(x).get(y).data();
                assertArrayEquals(want, b.run(x).get(y).data(), "IR " + ir);
                assertArrayEquals(want, c.run(x).get(y).data(), 1e-5f, "IR " + ir);
            }
        }
    }

    @Test
    void halfPrecisionConversionRoundsToNearestEven() {
        for (float f : new float[] {0f, -0f, 1f, -2.5f, 65504f, 6.1035156e-5f, 5.9604645e-8f, 0.1f, 1e-9f, 70000f}) {
            float back = ConstantFolder.halfToFloat(ConstantFolder.floatToHalf(f));
            double ulp = Math.max(Math.ulp((float) 0.0) , Math.abs(f) * 0x1p-11);
            if (Math.abs(f) <= 65504f && Math.abs(f) >= 5.9604645e-8f) {
                assertTrue(Math.abs(back - f) <= ulp, f + " -> " + back);
            }
        }
        assertEquals(Float.POSITIVE_INFINITY, ConstantFolder.halfToFloat(ConstantFolder.floatToHalf(70000f)));
        assertEquals(0x3c00, ConstantFolder.floatToHalf(1f) & 0xffff);
        assertEquals(0x3c00, ConstantFolder.floatToHalf(1f + 0x1p-11f) & 0xffff, "a tie rounds to the even mantissa");
        assertEquals(0x3c02, ConstantFolder.floatToHalf(1f + 3 * 0x1p-11f) & 0xffff, "a tie rounds to the even mantissa");
    }

    @Test
    void coverageNamesEveryNodeLeftInFp32AndWhy() {
        List<NodeProto> nodes = List.of(
                Graphs.node("MatMul", "scores", List.of("q", "k"), List.of("s")),
                Graphs.node("MatMul", "proj", List.of("s", "w"), List.of("p")),
                Graphs.node("Conv", "dyn", List.of("img", "kernel"), List.of("c")),
                Graphs.node("MatMul", "counts", List.of("ia", "ib"), List.of("ic")));
        OnnxModel m = OnnxModel.parse("attn.onnx", Graphs.model(13, nodes,
                List.of(Graphs.floatTensor("w", new float[16], 4, 4)),
                List.of(Graphs.floatValue("q", 2, 4), Graphs.floatValue("k", 4, 4), Graphs.floatValue("img", 1, 1, 4, 4),
                        Graphs.floatValue("kernel", 1, 1, 3, 3), Graphs.value("ia", onnx.Onnx.TensorProto.DataType.INT64, 2, 2),
                        Graphs.value("ib", onnx.Onnx.TensorProto.DataType.INT64, 2, 2)),
                List.of(Graphs.floatValue("p", 2, 4), Graphs.floatValue("c", 1, 1, 2, 2),
                        Graphs.value("ic", onnx.Onnx.TensorProto.DataType.INT64, 2, 2))).toByteArray(), null);
        List<Coverage.Entry> c = Coverage.of(m);
        assertEquals(4, c.size());
        // attention's Q·Kᵀ: quantized on both inputs, no weight
        assertEquals(new Coverage.Entry("scores", "MatMul", true, Coverage.ACTIVATIONS_ONLY), c.get(0));
        assertEquals(new Coverage.Entry("counts", "MatMul", false, "both inputs are computed at run time (ia x ib) but are"
                + " not both float activations (an integer operand?)"), c.get(3));
        assertEquals(new Coverage.Entry("proj", "MatMul", true, null), c.get(1));
        assertEquals(new Coverage.Entry("dyn", "Conv", false, "weight kernel is computed at run time (not a constant, even"
                + " after folding)"), c.get(2));
    }
}
