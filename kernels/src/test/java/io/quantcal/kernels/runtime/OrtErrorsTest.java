package io.quantcal.kernels.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quantcal.kernels.onnx.ExternalDataResolver;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import java.util.List;
import java.util.Map;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * What ONNX Runtime rejects is reported on one line that starts with the model file and names the model's node
 * where ONNX Runtime names one, also when its optimizer renamed the node.
 */
class OrtErrorsTest {

    /** Conv "conv_bad" whose weight wants 3 input channels, over an input of unknown shape: ORT fails at run time. */
    static OnnxModel badConv(String source) {
        return OnnxModel.parse(source, Graphs.model(13,
                List.of(Graphs.node("Conv", "conv_bad", List.of("x", "w"), List.of("y"),
                        Map.of("kernel_shape", new long[] {3, 3}))),
                List.of(Graphs.floatTensor("w", new float[4 * 3 * 3 * 3], 4, 3, 3, 3)),
                List.of(Graphs.floatValue("x", -1, -1, -1, -1)), List.of(Graphs.floatValue("y", -1, 4, -1, -1)))
                .toByteArray(), ExternalDataResolver.none());
    }

    @ParameterizedTest
    @EnumSource(value = OptLevel.class, names = {"NO_OPT", "ALL_OPT"})
    void aKernelFailingAtRunTimeNamesTheFileAndTheModelsNode(OptLevel level) {
        try (ModelRunner r = ModelRunner.open(badConv("models/bad_conv.onnx"), new RunnerOptions(1, 1, level))) {
            ModelException e = assertThrows(ModelException.class,
                    () -> r.run(FloatTensor.of("x", new float[64], 1, 1, 8, 8)));
            String m = e.getMessage();
            assertEquals(1, m.lines().count(), m);
            assertTrue(m.startsWith("models/bad_conv.onnx: ONNX Runtime run failed at node conv_bad (Conv"), m);
            assertTrue(m.contains("Input channels C is not equal to kernel channels * group. C: 1 kernel channels: 3")
                    && m.endsWith("(ORT_FAIL)"), m);
            if (level == OptLevel.ALL_OPT) {
                // ORT's NCHWc transformer runs the Conv as "y_nchwc": the message maps it back to the model's node
                assertTrue(m.contains("node conv_bad (Conv; ONNX Runtime's optimized graph calls it y_nchwc)"), m);
            }
        }
    }

    @Test
    void aFeedOfTheWrongShapeIsOneLineNamingFileAndInput() {
        OnnxModel fixed = OnnxModel.parse("models/fixed.onnx", Graphs.model(13,
                List.of(Graphs.node("Relu", "relu", List.of("x"), List.of("y"))), List.of(),
                List.of(Graphs.floatValue("x", -1, 3, 8, 8)), List.of(Graphs.floatValue("y", -1, 3, 8, 8))).toByteArray(),
                ExternalDataResolver.none());
        try (ModelRunner r = ModelRunner.open(fixed, RunnerOptions.singleThreaded())) {
            String m = assertThrows(ModelException.class, () -> r.run(FloatTensor.of("x", new float[64], 1, 1, 8, 8)))
                    .getMessage();
            assertEquals("models/fixed.onnx: ONNX Runtime run failed: Got invalid dimensions for input: x for the "
                    + "following indices index: 1 Got: 1 Expected: 3 Please fix either the inputs/outputs or the model. "
                    + "(ORT_INVALID_ARGUMENT)", m);
        }
    }

    @Test
    void anInt64InputIsNamedBeforeOnnxRuntimeRuns() {
        ValueInfoProto ids = Graphs.value("ids", TensorProto.DataType.INT64, -1, 4);
        OnnxModel m = OnnxModel.parse("models/ids.onnx", Graphs.model(13,
                List.of(Graphs.node("Cast", "cast", List.of("ids"), List.of("y"), Map.of("to", 1L))), List.of(),
                List.of(ids), List.of(Graphs.floatValue("y", -1, 4))).toByteArray(), ExternalDataResolver.none());
        try (ModelRunner r = ModelRunner.open(m, RunnerOptions.singleThreaded())) {
            String msg = assertThrows(ModelException.class, () -> r.run(FloatTensor.of("ids", new float[4], 1, 4)))
                    .getMessage();
            assertEquals("models/ids.onnx: graph input ids is an int64 tensor, given a float32 tensor", msg);
        }
    }

    @Test
    void loadTimeMessagesNameTheNodeTheyCite() {
        OrtErrors errors = new OrtErrors(badConv("m.onnx"));
        String m = errors.message("m.onnx", "cannot load the model", new OrtException(
                "Error code - ORT_FAIL - message: Load model from memory failed:Node (conv_bad) Op (Conv) "
                        + "[ShapeInferenceError] Attribute dilations has incorrect size\n"));
        assertEquals("m.onnx: ONNX Runtime cannot load the model at node conv_bad (Conv): Load model from memory "
                + "failed:Node (conv_bad) Op (Conv) [ShapeInferenceError] Attribute dilations has incorrect size (ORT_FAIL)", m);
        m = errors.message("m.onnx", "cannot load the model", new OrtException("Error code - ORT_INVALID_GRAPH - message: "
                + "This is an invalid model. In Node, (\"conv_bad\", Conv, \"\", -1) : (\"x\": tensor(float),) -> "
                + "(\"y\",) , Error Unrecognized attribute: foo for operator Conv"));
        assertTrue(m.startsWith("m.onnx: ONNX Runtime cannot load the model at node conv_bad (Conv): This is an invalid"), m);
        // a name ORT made up that matches nothing of the model is still shown, as ORT's
        assertEquals("node Conv_token_7 (Conv, as ONNX Runtime's optimized graph names it)", errors.node("Conv_token_7", "Conv"));
    }
}
