package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.EVAL;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.ImagePreprocessor;
import io.quantcal.kernels.onnx.BatchNormFolder;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * evaluate measures every layer after each method that ran (run.json passes.evaluate.after_each_method, shown in
 * report.html): the numbers after calibrate of a [calibrate, bias-correct] run are those of the QDQ model of a separate
 * run that stops after calibrate, recomputed here image by image in ONNX Runtime; the last method's are evaluate's own.
 * (ReportTest shows a calibrate, easyquant, adaround run's table and charts.)
 */
class MethodMetricsTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void eachMethodsLayerMetricsAreThoseOfItsOwnQdqModel() throws Exception {
        // 2 evaluation images of each class, all of them used
        Path eval = tmp.resolve("eval");
        List<Path> images = new ArrayList<>();
        try (Stream<Path> classes = Files.list(Path.of(EVAL))) {
            for (Path c : classes.sorted().toList()) {
                try (Stream<Path> l = Files.list(c)) {
                    for (Path f : l.sorted().limit(2).toList()) {
                        Path to = Files.createDirectories(eval.resolve(c.getFileName().toString())).resolve(f.getFileName().toString());
                        images.add(Files.copy(f, to));
                    }
                }
            }
        }
        String[] common = {"calibration.limit=24", "evaluation.path=" + eval, "evaluation.limit=100"};
        String all = tmp.resolve("all").toString();
        QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, all, JobFixtures.concat(common,
                "pipeline=[fold-bn,calibrate,bias-correct,export,evaluate]")), out);
        JsonNode ev = new ObjectMapper().readTree(Path.of(all, "run.json").toFile()).at("/passes/evaluate");
        assertEquals(images.size(), ev.get("samples").asInt());
        JsonNode stages = ev.get("after_each_method");
        assertEquals(List.of("calibrate", "bias-correct"), names(stages));
        assertEquals(ev.get("layer_sqnr_db"), stages.at("/bias-correct/layer_sqnr_db"), "the last method's model is evaluate's");
        assertEquals(ev.get("layer_cosine"), stages.at("/bias-correct/layer_cosine"));

        OnnxModel fp = BatchNormFolder.fold(OnnxModel.load(Path.of(RESNET))).model();
        QuantcalConfig cfg = JobFixtures.config(RESNET, CALIB, all, common);
        ImagePreprocessor pre = new ImagePreprocessor(cfg.preprocess());
        String[][] alone = {{"calibrate", "pipeline=[fold-bn,calibrate,export]"}};
        for (String[] a : alone) {
            String out1 = tmp.resolve(a[0]).toString();
            QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, out1, JobFixtures.concat(common, a[1])), out);
            OnnxModel q = OnnxModel.load(Path.of(out1, "model_qdq.onnx"));
            List<QuantizableNode> nodes = fp.quantizableNodes();
            // each layer's output as the next layers receive it: after its activation in FP32, the DequantizeLinear
            // that follows its output's QuantizeLinear in the QDQ model (the `ort` profile quantizes every one but
            // the classifier's, the model's output); that one before its activation in both
            List<String> fpTensors = new ArrayList<>(), qTensors = new ArrayList<>();
            int dequantized = 0;
            for (QuantizableNode n : nodes) {
                String after = n.activationOutput() != null ? n.activationOutput() : n.output();
                var ql = q.graph().getNodeList().stream()
                        .filter(x -> x.getOpType().equals("QuantizeLinear") && x.getInput(0).equals(after)).findFirst();
                var dql = ql.flatMap(y -> q.graph().getNodeList().stream()
                        .filter(x -> x.getOpType().equals("DequantizeLinear") && x.getInput(0).equals(y.getOutput(0))).findFirst());
                if (dql.isPresent()) {
                    fpTensors.add(after);
                    qTensors.add(dql.get().getOutput(0));
                    dequantized++;
                } else {
                    fpTensors.add(n.output());
                    qTensors.add(n.output());
                }
            }
            assertEquals(nodes.size() - 1, dequantized, "every layer output but the model's is quantized");
            var pairs = io.quantcal.job.pipeline.EvaluatePass.layerTensors(q, nodes);
            assertEquals(fpTensors, pairs.fp());
            assertEquals(qTensors, pairs.quant());
            // per layer Σ a², Σ (a − b)², Σ a·b, Σ b² over every image
            double[][] s = new double[nodes.size()][4];
            try (ModelRunner f = ModelRunner.open(fp, fpTensors, RunnerOptions.singleThreaded());
                 ModelRunner g = ModelRunner.open(q, qTensors, RunnerOptions.singleThreaded())) {
                for (Path img : images) {
                    float[] x = pre.apply(img.toString(), Files.readAllBytes(img));
                    Map<String, FloatTensor> ya = f.run(FloatTensor.of("input", x, 1, 1, 28, 28));
                    Map<String, FloatTensor> yb = g.run(FloatTensor.of("input", x, 1, 1, 28, 28));
                    for (int l = 0; l < nodes.size(); l++) {
                        float[] u = ya.get(fpTensors.get(l)).data(), v = yb.get(qTensors.get(l)).data();
                        for (int j = 0; j < u.length; j++) {
                            s[l][0] += (double) u[j] * u[j];
                            s[l][1] += (double) (u[j] - v[j]) * (u[j] - v[j]);
                            s[l][2] += (double) u[j] * v[j];
                            s[l][3] += (double) v[j] * v[j];
                        }
                    }
                }
            }
            JsonNode got = stages.get(a[0]);
            for (int l = 0; l < nodes.size(); l++) {
                String n = nodes.get(l).name();
                double sqnr = 10 * Math.log10(s[l][0] / s[l][1]);
                double cos = s[l][2] / Math.sqrt(s[l][0] * s[l][3]);
                assertEquals(sqnr, got.at("/layer_sqnr_db").get(n).asDouble(), 1e-6, a[0] + " " + n + " SQNR");
                assertEquals(cos, got.at("/layer_cosine").get(n).asDouble(), 1e-9, a[0] + " " + n + " cosine");
                Assertions.assertTrue(sqnr > 10 && cos > 0.9, a[0] + " " + n + ": " + sqnr + " dB, cosine " + cos);
            }
        }
        // bias correction changed the layers' outputs, so their numbers
        Assertions.assertNotEquals(stages.at("/calibrate/layer_cosine"), stages.at("/bias-correct/layer_cosine"));
    }

    /**
     * {@code evaluation.after-each-method = false}: evaluate runs the FP32 and the final QDQ model over the data once,
     * with no pass for the model after calibrate (the Spark jobs of its group, counted by a listener: one fewer than
     * with the switch on, and none for "the model after"), and its numbers for the final model are those of the run
     * with the switch on; run.json and the report say that the per-method numbers were not measured.
     */
    @Test
    void withTheSwitchOffEvaluateMakesNoPassPerEarlierMethod() throws Exception {
        List<String[]> jobs = java.util.Collections.synchronizedList(new ArrayList<>());
        org.apache.spark.scheduler.SparkListener listener = new org.apache.spark.scheduler.SparkListener() {
            @Override
            public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart e) {
                jobs.add(new String[] {e.properties().getProperty("spark.jobGroup.id"),
                        String.valueOf(e.properties().getProperty("spark.job.description"))});
            }
        };
        String[] common = {"calibration.limit=24", "evaluation.limit=30", "pipeline=[fold-bn,calibrate,bias-correct,export,evaluate]"};
        Map<String, Path> outs = new java.util.LinkedHashMap<>();
        spark().sparkContext().addSparkListener(listener);
        try {
            for (String on : List.of("true", "false")) {
                Path o = tmp.resolve("switch-" + on);
                QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, o.toString(), JobFixtures.concat(common,
                        "run-id=switch-" + on, "evaluation.after-each-method=" + on)), out);
                outs.put(on, o);
            }
            spark().sparkContext().listenerBus().waitUntilEmpty();
        } finally {
            spark().sparkContext().removeSparkListener(listener);
        }
        Map<String, List<String>> evaluateJobs = new java.util.HashMap<>();
        for (String on : outs.keySet()) {
            String group = io.quantcal.job.pipeline.Progress.group("switch-" + on, "evaluate");
            evaluateJobs.put(on, jobs.stream().filter(j -> group.equals(j[0])).map(j -> j[1]).toList());
        }
        List<String> withSwitch = evaluateJobs.get("true"), without = evaluateJobs.get("false");
        Assertions.assertFalse(without.isEmpty(), jobs.stream().map(j -> j[0] + ": " + j[1]).toList().toString());
        assertEquals(1, withSwitch.stream().filter(d -> d.contains("the model after calibrate")).count(), withSwitch.toString());
        assertEquals(0, without.stream().filter(d -> d.contains("the model after")).count(), without.toString());
        assertEquals(withSwitch.size() - 1, without.size(), withSwitch + " against " + without);

        ObjectMapper json = new ObjectMapper();
        JsonNode on = json.readTree(outs.get("true").resolve("run.json").toFile()).at("/passes/evaluate");
        JsonNode off = json.readTree(outs.get("false").resolve("run.json").toFile()).at("/passes/evaluate");
        assertEquals(List.of("calibrate", "bias-correct"), names(on.get("after_each_method")));
        Assertions.assertNull(on.get("after_each_method_skipped"));
        Assertions.assertNull(off.get("after_each_method"), off.toString());
        Assertions.assertTrue(off.path("after_each_method_skipped").asText().contains("quantcal.evaluation.after-each-method = false"),
                off.toString());
        for (String k : List.of("samples", "top1_agreement", "output_sqnr_db", "output_cosine", "layer_sqnr_db", "layer_cosine")) {
            assertEquals(on.get(k), off.get(k), k + " of the final model");
        }

        String reportOn = Files.readString(outs.get("true").resolve("report.html"));
        String reportOff = Files.readString(outs.get("false").resolve("report.html"));
        Assertions.assertTrue(reportOn.contains("after bias-correct: SQNR / cosine"));
        Assertions.assertFalse(reportOff.contains("after bias-correct: SQNR / cosine"));
        Assertions.assertFalse(reportOff.contains("after calibrate: SQNR / cosine"));
        Assertions.assertTrue(reportOff.contains("Not measured (quantcal.evaluation.after-each-method = false"), "report.html");
    }

    static List<String> names(JsonNode o) {
        List<String> l = new ArrayList<>();
        o.fieldNames().forEachRemaining(l::add);
        return l;
    }
}
