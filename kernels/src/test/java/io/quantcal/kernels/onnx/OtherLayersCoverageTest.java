package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;

/**
 * Layers with weights that quantcal does not quantize (LSTM, GRU, RNN, an Einsum with a constant operand, ONNX
 * Runtime's fused contrib ops) are listed FP32 with their reason, in the main graph and inside subgraphs; nothing
 * else is.
 */
class OtherLayersCoverageTest {

    @Test
    void recurrentLayersAreListedBesideTheQuantizedConvAndMatMul() {
        for (String op : List.of("LSTM", "GRU", "RNN")) {
            OnnxModel m = TestModels.recurrent(op);
            assertEquals(List.of(new Coverage.Entry("rnn", op, false, Coverage.RECURRENT)), Coverage.otherLayers(m), op);
            // the Conv and the MatMul around it are quantized, and the recurrent node is not among Conv/Gemm/MatMul
            assertEquals(List.of(new Coverage.Entry("conv1", "Conv", true, null), new Coverage.Entry("fc", "MatMul", true, null)),
                    Coverage.of(m), op);
        }
    }

    @Test
    void anEinsumIsListedOnlyWithAConstantOperand() {
        TestModels.Builder b = new TestModels.Builder(3);
        b.randomInit("w", 0.3, 8, 4);
        b.node(Graphs.node("Einsum", "proj", List.of("x", "w"), List.of("p"), Map.of("equation", "nk,kj->nj")));
        b.node(Graphs.node("Einsum", "outer", List.of("p", "p"), List.of("y"), Map.of("equation", "ni,nj->nij")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 8)), List.of(Graphs.floatValue("y", -1, 4, 4)));
        assertEquals(List.of(new Coverage.Entry("proj", "Einsum", false, Coverage.EINSUM)), Coverage.otherLayers(m));
        assertEquals(List.of(), Coverage.of(m));
    }

    @Test
    void onnxRuntimesFusedContribOpsAreListedAndOtherContribOpsAreNot() {
        TestModels.Builder b = new TestModels.Builder(5);
        b.randomInit("w", 0.3, 4, 1, 3, 3);
        b.node(Graphs.node("FusedConv", "fused", List.of("x", "w"), List.of("c"), Map.of("activation", "Relu"))
                .toBuilder().setDomain("com.microsoft").build());
        b.node(Graphs.node("Gelu", "gelu", List.of("c"), List.of("y")).toBuilder().setDomain("com.microsoft").build());
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 1, 8, 8)), List.of(Graphs.floatValue("y", -1, 4, 6, 6)));
        assertEquals(List.of(new Coverage.Entry("fused", "FusedConv", false, Coverage.FUSED)), Coverage.otherLayers(m));
    }

    @Test
    void aRecurrentLayerInsideABranchIsListedWithItsPlace() {
        TestModels.Builder b = new TestModels.Builder(9);
        b.randomInit("W", 0.3, 1, 8, 3);
        b.randomInit("R", 0.3, 1, 8, 2);
        NodeProto gru = Graphs.node("GRU", "", List.of("x", "W", "R"), List.of("yb"), Map.of("hidden_size", 2L));
        GraphProto then = GraphProto.newBuilder().setName("then").addNode(gru)
                .addOutput(Graphs.valueOfAnyShape("yb", TensorProto.DataType.FLOAT)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(Graphs.node("Identity", "id", List.of("x"), List.of("ye")))
                .addOutput(Graphs.valueOfAnyShape("ye", TensorProto.DataType.FLOAT)).build();
        b.node(Graphs.node("If", "branch", List.of("cond"), List.of("y"),
                Map.of("then_branch", then, "else_branch", otherwise)));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", 5, 1, 3), Graphs.value("cond", TensorProto.DataType.BOOL)),
                List.of(Graphs.valueOfAnyShape("y", TensorProto.DataType.FLOAT)));
        assertEquals(List.of(new Coverage.Entry("(unnamed, output yb)", "GRU", false,
                "inside the then_branch of If node 'branch': " + Coverage.RECURRENT)), Coverage.otherLayers(m));
    }

    @Test
    void aMatMulWithItsConstantFirstSaysSoAndWhatToDoUnlessTheFrontEndRewritesIt() {
        // y = W · x (W [4, 8] constant, x [N, 8, 3]): the activation is the second operand
        TestModels.Builder b = new TestModels.Builder(8);
        b.randomInit("W", 0.3, 4, 8);
        b.node(Graphs.node("MatMul", "left", List.of("W", "x"), List.of("y")));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 8, 3)), List.of(Graphs.floatValue("y", -1, 4, 3)));
        assertEquals(List.of(new Coverage.Entry("left", "MatMul", false, "constant first operand W (W · x): quantcal"
                + " writes such a MatMul as (xᵀ · Wᵀ)ᵀ when W is a 2-D float constant and the rank of x is known (declared"
                + " in the model's value_info, or given by its producer); export the product as x · Wᵀ to quantize it"
                + " otherwise")), Coverage.of(m));
        // the front end's rewrite (x's rank declared here): then it is a layer like any other
        assertEquals(List.of(new Coverage.Entry("left", "MatMul", true, null)),
                Coverage.of(ConstantFirstMatMul.rewrite(m).model()));
        // excluded by config, it says that instead
        assertEquals("excluded by config (quantcal.quantization.exclude)",
                Coverage.of(m.withExcluded(java.util.Set.of("left"))).get(0).reason());
    }
}
