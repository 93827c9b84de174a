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
            List<String> fpTensors = new ArrayList<>(), qTensors = new ArrayList<>();
            for (QuantizableNode n : nodes) {
                fpTensors.add(n.output());
                qTensors.add(q.hasTensor(n.output()) || n.activationOutput() == null ? n.output() : n.activationOutput());
            }
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

    static List<String> names(JsonNode o) {
        List<String> l = new ArrayList<>();
        o.fieldNames().forEachRemaining(l::add);
        return l;
    }
}
