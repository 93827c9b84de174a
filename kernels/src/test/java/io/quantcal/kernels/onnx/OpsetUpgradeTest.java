package io.quantcal.kernels.onnx;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Test;

class OpsetUpgradeTest {

    private static OnnxModel model(long opset, NodeProto node) {
        return OnnxModel.parse("old.onnx", Graphs.model(opset, List.of(node), List.of(),
                List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("y"))).toByteArray(), null);
    }

    private static void assertRefused(OnnxModel m, long to, String what) {
        ModelException e = assertThrows(ModelException.class, () -> OpsetUpgrade.check(m, to, "a test"));
        assertTrue(e.getMessage().contains("old.onnx: node n (") && e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void oldFormsAreRefusedOnlyWhenTheRaiseCrossesTheirChange() {
        OnnxModel clip10 = model(10, Graphs.node("Clip", "n", List.of("x"), List.of("y"), Map.of("min", 0.0, "max", 6.0)));
        assertRefused(clip10, 13, "min/max attributes");

        OnnxModel mean13 = model(13, Graphs.node("ReduceMean", "n", List.of("x"), List.of("y"), Map.of("axes", new long[] {1})));
        assertDoesNotThrow(() -> OpsetUpgrade.check(mean13, 17, "a test"));
        assertRefused(mean13, 21, "axes attribute");

        OnnxModel split13 = OnnxModel.parse("old.onnx", Graphs.model(13,
                List.of(Graphs.node("Split", "n", List.of("x"), List.of("a", "b"), Map.of("axis", 1L))), List.of(),
                List.of(Graphs.floatValue("x", 2, 4)), List.of(Graphs.floatValue("a"), Graphs.floatValue("b"))).toByteArray(), null);
        assertRefused(split13, 21, "num_outputs");

        OnnxModel relu10 = model(10, Graphs.node("Relu", "n", List.of("x"), List.of("y")));
        assertDoesNotThrow(() -> OpsetUpgrade.check(relu10, 21, "a test"));
    }
}
