package io.quantcal.job.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Top-1 is reported for class scores [N, classes] only; a map or a sequence output says why it has none. */
class EvaluateOutputKindTest {

    /** x [N, 1, 8, 8] → conv (4 channels) → relu, then the given tail; the first graph output is {@code out}. */
    static OnnxModel model(boolean classifier, long... outDims) {
        TestModels.Builder b = new TestModels.Builder(2);
        b.conv("conv", "x", "c", 1, 4, 3, 1, 1, 1, true).relu("relu", "c", "r");
        String out = "r";
        if (classifier) {
            b.classifier("r", 4, 3);
            out = "logits";
        }
        return b.build(13, List.of(Graphs.floatValue("x", -1, 1, 8, 8)), List.of(Graphs.floatValue(out, outDims)));
    }

    @Test
    void classScoresGetTopOneAndOtherOutputsSayWhyNot() {
        assertNull(EvaluatePass.notClassScores(model(true, -1, 3)));
        assertEquals("output r is [N, 4, 8, 8], not class scores [N, classes]",
                EvaluatePass.notClassScores(model(false, -1, 4, 8, 8)));
        assertEquals("output r is [N, 4, ?, ?], not class scores [N, classes]",
                EvaluatePass.notClassScores(model(false, -1, 4, -1, -1)));
        // one value per sample (a detector's probability): its arg max is always 0, so no top-1 and no agreement
        io.quantcal.kernels.onnx.TensorInfo p = new io.quantcal.kernels.onnx.TensorInfo("p", 1, new long[] {-1, 1});
        assertEquals("output p is [N, 1], not class scores [N, classes] (one value per sample)", EvaluatePass.notClassScores(p));
    }

    @Test
    void theComparedOutputIsTheFirstFloatOneWhoseShapeFollowsFromTheInputs() {
        var o = EvaluatePass.comparedOutput(TestModels.dataDependentOutputs("kept", "labels", "logits"));
        assertEquals("logits", o.name());
        assertEquals(java.util.Map.of(
                "kept", "its shape depends on the data (NonZero node 'nz'): the FP32 and the quantized model can return"
                        + " different numbers of values for the same samples",
                "labels", "an int64 tensor, not float32 values"), o.skipped());
        assertEquals(List.of(), o.others());
        // every other float output whose shape follows from the inputs' is compared too
        var both = EvaluatePass.comparedOutput(TestModels.dataDependentOutputs("kept", "logits", "probs"));
        assertEquals("logits", both.name());
        assertEquals(List.of("probs"), both.others());
        var none = EvaluatePass.comparedOutput(TestModels.dataDependentOutputs("kept", "labels"));
        assertNull(none.name());
        assertEquals("every output is data-dependent or not float32: kept, labels", none.why());
    }
}
