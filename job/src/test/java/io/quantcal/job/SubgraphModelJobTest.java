package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.kernels.onnx.Coverage;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx.GraphProto;
import onnx.Onnx.TensorProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole runs on models with an If whose branches read main-graph tensors and hold a Conv (Silero VAD, the voice
 * activity detector shipped in npm's @ricky0123/vad-web, has all its convolutions inside an If on the sample rate):
 * the Conv inside is reported FP32 with its place, the rest is quantized, and the QDQ model computes what the FP32
 * one does.
 */
class SubgraphModelJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void theConvInsideTheBranchIsReportedAndTheQdqModelTracksFp32() throws Exception {
        Path file = tmp.resolve("branch.onnx");
        Files.write(file, TestModels.branchReadingMainGraph(1, 28).toByteArray());
        String output = tmp.resolve("o").toString();
        String text = JobFixtures.runOnExample(spark(), file, output);
        Assertions.assertTrue(text.contains("coverage: 2 of 3 Conv/ConvTranspose/Gemm/MatMul nodes quantized"), text);
        Assertions.assertTrue(text.contains("  FP32 Conv sub_conv: inside the then_branch of If node 'branch': "), text);
        JsonNode run = new ObjectMapper().readTree(Path.of(output, "run.json").toFile());
        JsonNode fp32 = run.get("coverage").get("fp32");
        assertEquals(1, fp32.size(), fp32.toString());
        assertEquals("sub_conv", fp32.get(0).get("node").asText(), fp32.toString());
        assertEquals("inside the then_branch of If node 'branch': " + Coverage.IN_SUBGRAPH, fp32.get(0).get("reason").asText());
        // the branch still reads w2i (folded from an Identity into an initializer) and relu1's output
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        Assertions.assertTrue(qdq.isInitializer("w2i"));
        assertEquals("Relu", qdq.producer("r").getOpType());
        JsonNode eval = run.get("passes").get("evaluate");
        double sqnr = eval.get("output_sqnr_db").asDouble();
        System.out.printf("SubgraphModelJobTest: output SQNR %.2f dB%n", sqnr);
        // measured 44.33 dB (printed below); the same model built in Python and run by deploy/quantcal with conf/example.conf
        // gave −1.7 dB before the export kept relu1 for the branch, 44.1 dB after
        Assertions.assertTrue(sqnr > 30, "output SQNR " + sqnr + " dB");
    }

    @Test
    void anIfOnAnInputFixedToOneValueRunsItsBranchInlineAndIsQuantized() throws Exception {
        // the model above with the If deciding on an int64 scalar input sr (Silero VAD's sample rate): sr == 16000
        OnnxModel m = TestModels.branchOnInput(1, 28);
        Path file = tmp.resolve("rate.onnx");
        Files.write(file, m.toByteArray());
        String output = tmp.resolve("rate").toString();
        String text = JobFixtures.runOnExample(spark(), file, output, "input-values.sr=16000");
        Assertions.assertTrue(text.contains("model: input [sr] fixed to [[16000.0]] (quantcal.input-values): the exported"
                + " models no longer take it"), text);
        Assertions.assertTrue(text.contains("model: 1 If with a constant condition replaced by the branch it takes"
                + " [branch: then_branch]"), text);
        Assertions.assertTrue(text.contains("coverage: 3 of 3 Conv/ConvTranspose/Gemm/MatMul nodes quantized"), text);
        JsonNode run = new ObjectMapper().readTree(Path.of(output, "run.json").toFile());
        assertEquals("[\"branch: then_branch\"]", run.get("front_end").get("ifs_inlined").toString());
        assertEquals("{\"sr\":[16000.0]}", run.get("front_end").get("input_values").toString());
        OnnxModel qdq = OnnxModel.load(Path.of(output, "model_qdq.onnx"));
        assertEquals(List.of("x"), qdq.inputs().stream().map(i -> i.name()).toList());
        Assertions.assertFalse(qdq.nodes().stream().anyMatch(n -> n.getOpType().equals("If")));
        double sqnr = run.get("passes").get("evaluate").get("output_sqnr_db").asDouble();
        System.out.printf("SubgraphModelJobTest: fixed input, output SQNR %.2f dB%n", sqnr);
        Assertions.assertTrue(sqnr > 30, "output SQNR " + sqnr + " dB");

        // a key naming no input of the model: a config error, before any output is written
        io.quantcal.job.config.ConfigException e = assertThrows(io.quantcal.job.config.ConfigException.class,
                () -> QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                        tmp.resolve("bad").toString(), "input-values.rate=16000"), new PrintStream(new ByteArrayOutputStream())));
        assertEquals("quantcal.input-values.rate: the model has no input rate; its inputs are [x, sr] (model file:" + file + ")",
                e.getMessage());
        Assertions.assertFalse(Files.exists(tmp.resolve("bad")));
        // a fixed input named by a data key too: the message says it is fixed
        io.quantcal.kernels.onnx.ModelException both = assertThrows(io.quantcal.kernels.onnx.ModelException.class,
                () -> QuantcalJob.run(spark(), JobFixtures.config(file.toString(), JobFixtures.CALIB,
                        tmp.resolve("both").toString(), "input-values.sr=16000", "input-batch-axes.sr=1"),
                        new PrintStream(new ByteArrayOutputStream())));
        assertEquals("quantcal.input-batch-axes names 'sr', which is not an input of the model file:" + file + "; its inputs:"
                + " [x] (sr is fixed by quantcal.input-values: the data feed it no more)", both.getMessage());
    }

    @Test
    void aModelWhoseOnlyConvIsInsideABranchIsRefusedNamingIt() throws Exception {
        // x [N, 1, 28, 28]; If(max(x) > −1e9): then mean(Conv(x, w)), else mean(x), both [N, 1, 1, 1] → y;
        // the only Conv is inside the then branch
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(Graphs.node("Conv", "sub_conv", List.of("x", "w"), List.of("t")))
                .addNode(Graphs.node("ReduceMean", "sub_mean", List.of("t"), List.of("y_then"), Map.of("axes",
                        new long[] {1, 2, 3})))
                .addOutput(Graphs.valueOfAnyShape("y_then", TensorProto.DataType.FLOAT)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(Graphs.node("ReduceMean", "sub_mean2", List.of("x"), List.of("y_else"), Map.of("axes",
                        new long[] {1, 2, 3})))
                .addOutput(Graphs.valueOfAnyShape("y_else", TensorProto.DataType.FLOAT)).build();
        TestModels.Builder b = new TestModels.Builder(5);
        b.randomInit("w", 0.3, 4, 1, 3, 3);
        b.node(Graphs.node("ReduceMax", "rmax", List.of("x"), List.of("mx"), Map.of("keepdims", 0L)));
        b.node(Graphs.node("Constant", "lo", List.of(), List.of("lo"),
                Map.of("value", Graphs.floatTensor("lo", new float[] {-1e9f}))));
        b.node(Graphs.node("Greater", "gt", List.of("mx", "lo"), List.of("cond")));
        b.node(Graphs.node("If", "vad", List.of("cond"), List.of("y"), Map.of("then_branch", then, "else_branch", otherwise)));
        OnnxModel m = b.build(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("y", -1, 1, 1, 1)));
        Path file = tmp.resolve("only.onnx");
        Files.write(file, m.toByteArray());
        assertEquals("model file:" + file + " has no quantizable node (Conv, Gemm, or MatMul with a constant weight) in"
                + " its main graph; 1 Conv/ConvTranspose/Gemm/MatMul node inside its If/Loop/Scan subgraphs stays FP32: "
                + Coverage.IN_SUBGRAPH + "; an If whose condition only inputs fed one value decide (a sample rate) runs"
                + " its branch in the main graph when they are fixed: quantcal.input-values { name = value }", refusal(file));
    }

    @Test
    void aModelQuantizedAlreadyIsRefusedSayingSo() throws Exception {
        // ONNX Runtime's dynamic quantization as @imgly/background-removal's small ISNet ships it:
        // DynamicQuantizeLinear → ConvInteger (uint8 codes) → Cast → Mul by the scales
        TestModels.Builder b = new TestModels.Builder(7);
        b.node(Graphs.node("DynamicQuantizeLinear", "dq", List.of("x"), List.of("xq", "xs", "xz")));
        TensorProto.Builder w = TensorProto.newBuilder().setName("wq").setDataType(TensorProto.DataType.UINT8_VALUE)
                .addAllDims(List.of(4L, 1L, 3L, 3L));
        w.setRawData(org.nd4j.shade.protobuf.ByteString.copyFrom(new byte[36]));
        b.node(Graphs.node("ConvInteger", "conv", List.of("xq", "wq", "xz"), List.of("acc")));
        b.node(Graphs.node("Cast", "cast", List.of("acc"), List.of("accf"), Map.of("to", 1L)));
        b.node(Graphs.node("Mul", "rescale", List.of("accf", "xs"), List.of("y")));
        var proto = b.model(13, List.of(Graphs.floatValue("x", -1, 1, 28, 28)), List.of(Graphs.floatValue("y", -1, 4, 26, 26)));
        proto = proto.toBuilder().setGraph(proto.getGraph().toBuilder().addInitializer(w)).build();
        Path file = tmp.resolve("dynamic.onnx");
        Files.write(file, proto.toByteArray());
        assertEquals("model file:" + file + " is quantized already ({ConvInteger=1, DynamicQuantizeLinear=1}): give quantcal"
                + " the float model it was made from; it has no quantizable node (Conv, Gemm, or MatMul with a constant"
                + " weight) in its main graph", refusal(file));
    }

    /** The job's error on {@code file} (calibrate, export), checked to have written nothing. */
    private String refusal(Path file) {
        String output = tmp.resolve(file.getFileName() + "-out").toString();
        ModelException e = assertThrows(ModelException.class, () -> QuantcalJob.run(spark(), JobFixtures.config(
                file.toString(), JobFixtures.CALIB, output, "calibration.limit=8", "pipeline=[calibrate,export]"),
                new PrintStream(new ByteArrayOutputStream())));
        Assertions.assertTrue(!Files.exists(Path.of(output)), "nothing written");
        return e.getMessage();
    }
}
