package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx.GraphProto;
import onnx.Onnx.NodeProto;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bundled resnet_small with a channels-last input, as tf2onnx writes Keras models (input [N, 28, 28, 1], a
 * Transpose [0, 3, 1, 2] before the first Conv), through the whole job with {@code preprocess.layout = NHWC}: the same
 * numbers as the NCHW model, and the stem's channel padding done by a 1×1 integer convolution, not a Pad (which ONNX
 * Runtime would run on the innermost axis).
 */
class ChannelsLastStemJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    static OnnxModel channelsLast(OnnxModel m) {
        GraphProto.Builder g = m.graph().toBuilder();
        String in = g.getInput(0).getName();
        NodeProto t = Graphs.node("Transpose", "to_nchw", List.of(in + "_nhwc"), List.of(in), Map.of("perm", new long[] {0, 3, 1, 2}));
        List<NodeProto> nodes = new java.util.ArrayList<>(g.getNodeList());
        nodes.add(0, t);
        g.clearNode().addAllNode(nodes);
        g.setInput(0, Graphs.floatValue(in + "_nhwc", -1, 28, 28, 1));
        return m.withGraph(g.build());
    }

    @Test
    void anNhwcModelQuantizesAsItsNchwTwinWithTheStemPaddedByAConvolution() throws Exception {
        OnnxModel nchw = OnnxModel.load(JobFixtures.EXAMPLE.resolve("models/resnet_small.onnx"));
        Path file = tmp.resolve("resnet_small_nhwc.onnx");
        Files.write(file, channelsLast(nchw).toByteArray());
        String[] outputs = {tmp.resolve("nhwc").toString(), tmp.resolve("nchw").toString()};
        JsonNode[] eval = new JsonNode[2];
        for (int k = 0; k < 2; k++) {
            QuantcalJob.run(spark(), JobFixtures.config(k == 0 ? file.toString() : JobFixtures.EXAMPLE.resolve(
                            "models/resnet_small.onnx").toString(), JobFixtures.CALIB, outputs[k], "calibration.limit=64",
                    "evaluation.limit=200", "pipeline=[fold-bn,calibrate,export,evaluate]", "evaluation.speed=false",
                    "calibration.preprocess.layout=" + (k == 0 ? "NHWC" : "NCHW")), new PrintStream(new ByteArrayOutputStream()));
            eval[k] = new ObjectMapper().readTree(Path.of(outputs[k], "run.json").toFile()).get("passes").get("evaluate");
        }
        // the same images, laid out for each model: the same table and the same quantized model's answers
        assertEquals(eval[1].get("top1_quantized").asDouble(), eval[0].get("top1_quantized").asDouble(), eval[0].toString());
        assertEquals(eval[1].get("output_sqnr_db").asDouble(), eval[0].get("output_sqnr_db").asDouble(), 1e-6);
        JobFixtures.assertSameScaleTable(spark(), outputs[0], outputs[1]);
        OnnxModel qdq = OnnxModel.load(Path.of(outputs[0], "model_qdq.onnx"));
        assertEquals(0, qdq.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
        assertEquals(1, qdq.nodes().stream().filter(n -> n.getName().endsWith("_stem_channels")).count());
        Map<String, Long> ops = TestModels.optimizedOps(qdq, tmp.resolve("optimized.onnx"));
        assertEquals(0L, ops.getOrDefault(":Pad", 0L), ops.toString());
        // the NCHW twin keeps its Pad (cheaper there)
        OnnxModel twin = OnnxModel.load(Path.of(outputs[1], "model_qdq.onnx"));
        Assertions.assertEquals(1, twin.nodes().stream().filter(n -> n.getOpType().equals("Pad")).count());
    }
}
