package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.OnnxModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import onnx.Onnx.ModelProto;
import onnx.Onnx.OperatorSetIdProto;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A model as the newest ONNX writes it (onnx 1.21's make_model: IR 13, opset 26; node metadata, an IR-10 field) goes
 * through the whole job and gives the table and the answers of the same model at IR 7 / opset 13, which the bundled
 * models are: their operators (Conv, BatchNormalization, Relu, Clip, Add, GlobalAveragePool, Flatten, Gemm,
 * Constant) changed only in their type lists between 13 and 26. Before, both were refused ("IR versions 3..8",
 * "supports 10..21") although the bundled ONNX Runtime runs them.
 */
class NewestOnnxJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    /** {@code m} stamped IR 13 / opset 26, its first node carrying metadata_props (NodeProto field 9, IR 10). */
    static ModelProto newest(ModelProto m) {
        ModelProto.Builder b = m.toBuilder().setIrVersion(13);
        for (int i = 0; i < b.getOpsetImportCount(); i++) {
            if (b.getOpsetImport(i).getDomain().isEmpty() || b.getOpsetImport(i).getDomain().equals("ai.onnx")) {
                b.setOpsetImport(i, OperatorSetIdProto.newBuilder().setDomain("").setVersion(26));
            }
        }
        var meta = org.nd4j.shade.protobuf.UnknownFieldSet.newBuilder().addField(9,
                org.nd4j.shade.protobuf.UnknownFieldSet.Field.newBuilder().addLengthDelimited(onnx.Onnx.StringStringEntryProto
                        .newBuilder().setKey("pkg.torch.onnx.stack_trace").setValue("model.py:12").build().toByteString())
                        .build()).build();
        b.setGraph(b.getGraph().toBuilder().setNode(0, b.getGraph().getNode(0).toBuilder().setUnknownFields(meta)));
        return b.build();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"resnet_small", "mobilenet_small"})
    void opset26AndIr13GiveTheTableOfOpset13(String name) throws Exception {
        Path original = JobFixtures.EXAMPLE.resolve("models/" + name + ".onnx");
        Path file = tmp.resolve(name + "_opset26.onnx");
        Files.write(file, newest(ModelProto.parseFrom(Files.readAllBytes(original))).toByteArray());
        String[] outputs = {tmp.resolve("newest").toString(), tmp.resolve("original").toString()};
        JsonNode[] eval = new JsonNode[2];
        for (int k = 0; k < 2; k++) {
            QuantcalJob.run(spark(), JobFixtures.config(k == 0 ? file.toString() : original.toString(), JobFixtures.CALIB,
                    outputs[k], "calibration.limit=64", "evaluation.limit=200", "evaluation.speed=false",
                    "pipeline=[fold-bn,calibrate,export,evaluate]"), new PrintStream(new ByteArrayOutputStream()));
            eval[k] = new ObjectMapper().readTree(Path.of(outputs[k], "run.json").toFile()).get("passes").get("evaluate");
        }
        assertEquals(eval[1].get("top1_quantized").asDouble(), eval[0].get("top1_quantized").asDouble(), eval[0].toString());
        assertEquals(eval[1].get("output_sqnr_db").asDouble(), eval[0].get("output_sqnr_db").asDouble(), 1e-9);
        JobFixtures.assertSameScaleTable(spark(), outputs[0], outputs[1]);
        // the QDQ model keeps what it was given: opset 26, IR 13, the node's metadata (evaluate ran it in ONNX Runtime)
        OnnxModel qdq = OnnxModel.load(Path.of(outputs[0], "model_qdq.onnx"));
        assertEquals(26, qdq.opset());
        assertEquals(13, qdq.proto().getIrVersion());
        Assertions.assertTrue(qdq.proto().getGraph().getNodeList().stream().anyMatch(n -> n.getUnknownFields().hasField(9)),
                "the node metadata carried into the export");
    }
}
