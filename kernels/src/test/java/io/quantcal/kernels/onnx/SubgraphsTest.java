package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

/**
 * A model whose If reads main-graph tensors from inside its branches (as Silero VAD's convolutions read their weights):
 * the front end and the export keep every name a subgraph reads, coverage names the Conv inside as FP32.
 */
class SubgraphsTest {

    static OnnxModel model() {
        return TestModels.branchReadingMainGraph(2, 8);
    }

    static FloatTensor input() {
        return FloatTensor.of("x", TestModels.uniform(new Random(3), 4 * 2 * 64, -1, 2), 4, 2, 8, 8);
    }

    static float[] run(OnnxModel m) {
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            return r.run(input()).get("logits").data();
        }
    }

    @Test
    void whatABranchReadsFromTheMainGraphIsReadByItsIf() {
        OnnxModel m = model();
        NodeProto branch = m.node("branch");
        assertEquals(Set.of("r", "w2i"), Subgraphs.outerReads(branch));
        assertEquals(List.of("cond", "r", "w2i"), Subgraphs.reads(branch));
        assertEquals(List.of("branch"), m.consumers("w2i").stream().map(NodeProto::getName).toList());
        assertEquals(List.of("relu1"), m.consumers("c1").stream().map(NodeProto::getName).toList());
        // r: read by the If only (its branches)
        assertEquals(List.of("branch"), m.consumers("r").stream().map(NodeProto::getName).toList());
        List<Subgraphs.Nested> inside = Subgraphs.nodes(branch);
        // in the order of the If's attributes (here else_branch first)
        assertEquals(List.of("sub_id", "sub_conv", "sub_relu"), inside.stream().map(s -> s.node().getName()).toList());
        assertEquals("the else_branch of If node 'branch'", inside.get(0).where());
        assertEquals("the then_branch of If node 'branch'", inside.get(1).where());
    }

    @Test
    void foldingKeepsTheIdentityOutputTheBranchReadsAndComputesTheSame() {
        OnnxModel m = model();
        ConstantFolder.Result f = ConstantFolder.fold(m);
        // Identity and Constant became initializers; w2i stays, as the branch reads it by that name
        assertEquals(Map.of("Identity", 1, "Constant", 1), f.foldedByOp());
        assertTrue(f.model().isInitializer("w2i"), "the folded Identity's output is still there for the branch");
        assertArrayEquals(run(m), run(f.model()));
    }

    @Test
    void coverageNamesTheConvInsideTheBranchAsFp32() {
        OnnxModel m = ConstantFolder.fold(model()).model();
        List<Coverage.Entry> cov = Coverage.of(m);
        assertEquals(List.of("conv1", "fc", "sub_conv"), cov.stream().map(Coverage.Entry::node).toList());
        Coverage.Entry sub = cov.get(2);
        assertFalse(sub.quantized());
        assertEquals("inside the then_branch of If node 'branch': " + Coverage.IN_SUBGRAPH, sub.reason());
        assertEquals(List.of("conv1", "fc"), m.quantizableNodes().stream().map(QuantizableNode::name).toList());
    }

    @Test
    void theOrtExportKeepsTheReluABranchReadsAndTracksFp32() {
        OnnxModel m = ConstantFolder.fold(model()).model();
        QdqPlacement p = QdqPlacement.plan(m, QdqProfile.ORT);
        // conv1's output goes through relu1 to the If: the Relu is not folded into conv1's output quantization,
        // since the branch would then read conv1's output under relu1's name
        assertFalse(p.folded().containsKey("r"), p.folded().toString());
        Map<String, QuantParams> a = QdqPlacementTest.calibrate(m, p, input());
        OnnxModel qdq = QdqExporter.export(m, a, QdqPlacementTest.weights(m), Map.of(), QdqOptions.onnxRuntime(), p);
        assertTrue(qdq.nodes().stream().anyMatch(n -> n.getName().equals("relu1")), "relu1 kept");
        float[] fp = run(m);
        float[] q = run(qdq);
        double signal = 0, noise = 0;
        for (int i = 0; i < fp.length; i++) {
            signal += fp[i] * fp[i];
            noise += (fp[i] - q[i]) * (fp[i] - q[i]);
        }
        double sqnr = 10 * Math.log10(signal / noise);
        System.out.printf("SubgraphsTest: QDQ output SQNR %.2f dB%n", sqnr);
        // measured 44.99 dB (printed below)
        assertTrue(sqnr > 25, "output SQNR " + sqnr + " dB");
    }
}
