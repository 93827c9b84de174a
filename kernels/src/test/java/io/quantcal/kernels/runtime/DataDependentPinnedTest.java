package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.TestModels;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A captured tensor whose size changes between runs of inputs of the same shape is named, not ORT's buffer error. */
class DataDependentPinnedTest {

    @Test
    void aTensorWhoseShapeTheDataDecideIsNamed() {
        var m = TestModels.dataDependentOutputs("kept");
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded());
             ModelRunner.PinnedBuffers p = r.pinned(List.of("kept"))) {
            float[] zeros = new float[28 * 28], ramp = new float[28 * 28];
            for (int i = 0; i < ramp.length; i++) ramp[i] = (i % 28) / 7f - 2;
            var a = Map.of("x", new InputTensor("x", ElementType.FLOAT, new long[] {1, 1, 28, 28}, zeros));
            var b = Map.of("x", new InputTensor("x", ElementType.FLOAT, new long[] {1, 1, 28, 28}, ramp));
            int[] sizes = new int[2];
            r.runPinned(a, p, (n, buf) -> sizes[0] = buf.remaining() / 4);
            int other = r.runInputs(b).get("kept").data().length;
            assertTrue(sizes[0] != other, "the two images keep different numbers of logits: " + sizes[0] + ", " + other);
            ModelException e = assertThrows(ModelException.class, () -> r.runPinned(b, p, (n, buf) -> {}));
            assertTrue(e.getMessage().contains(": tensor kept has shape {" + other + "} in this run and {" + sizes[0]
                    + "} in an earlier one with inputs of the same shape: its shape depends on the data"), e.getMessage());
        }
    }
}
