package io.quantcal.kernels.dfq;

import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.QuantizableNode;
import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import io.quantcal.kernels.runtime.FloatTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import java.awt.image.Raster;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import onnx.Onnx.GraphProto;
import onnx.Onnx.TensorProto;
import io.quantcal.kernels.onnx.Graphs;

/** The Fashion-MNIST fixtures, ONNX Runtime runs and weight fake-quantization for the DFQ tests. */
final class DfqFixtures {

    static final Path EXAMPLE = Path.of(System.getProperty("user.dir")).resolveSibling("examples").resolve("fashion-mnist");

    private DfqFixtures() {}

    static OnnxModel model(String file) {
        return OnnxModel.load(EXAMPLE.resolve("models").resolve(file));
    }

    /** Labelled images: the first {@code perClass} of each class directory, sorted by path. */
    record Images(float[] x, int[] labels) {
        int count() {
            return labels.length;
        }
    }

    static Images calibration(int perClass) {
        List<float[]> pixels = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(EXAMPLE.resolve("calib"))) {
            List<Path> classes = dirs.sorted().toList();
            for (int label = 0; label < classes.size(); label++) {
                try (Stream<Path> files = Files.list(classes.get(label))) {
                    for (Path f : files.sorted().limit(perClass).toList()) {
                        Raster r = ImageIO.read(f.toFile()).getRaster();
                        float[] img = new float[28 * 28];
                        for (int y = 0; y < 28; y++) {
                            for (int x = 0; x < 28; x++) {
                                // the fixtures' preprocessing: x = (p/255 − 0.2860) / 0.3530
                                img[y * 28 + x] = (r.getSample(x, y, 0) / 255f - 0.2860f) / 0.3530f;
                            }
                        }
                        pixels.add(img);
                        labels.add(label);
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        float[] x = new float[pixels.size() * 784];
        for (int i = 0; i < pixels.size(); i++) System.arraycopy(pixels.get(i), 0, x, i * 784, 784);
        return new Images(x, labels.stream().mapToInt(Integer::intValue).toArray());
    }

    static float[] run(OnnxModel model, String input, float[] x, long... shape) {
        try (ModelRunner r = ModelRunner.open(model, RunnerOptions.singleThreaded())) {
            return r.run(FloatTensor.of(input, x, shape)).values().iterator().next().data();
        }
    }

    static double accuracy(OnnxModel model, Images images) {
        float[] logits = run(model, "input", images.x(), images.count(), 1, 28, 28);
        int correct = 0;
        for (int n = 0; n < images.count(); n++) {
            int best = 0;
            for (int k = 1; k < 10; k++) if (logits[n * 10 + k] > logits[n * 10 + best]) best = k;
            if (best == images.labels()[n]) correct++;
        }
        return (double) correct / images.count();
    }

    /** Symmetric 8-bit per-tensor fake quantization (max calibration) of every Conv and Gemm weight. */
    static OnnxModel fakeQuantWeights(OnnxModel model, int bits) {
        GraphProto.Builder g = model.graph().toBuilder();
        for (QuantizableNode q : model.quantizableNodes()) {
            float[] w = model.initializerFloats(q.weight());
            float[] wq = fakeQuant(w, q.weightShape(), bits);
            for (int i = 0; i < g.getInitializerCount(); i++) {
                TensorProto t = g.getInitializer(i);
                if (t.getName().equals(q.weight())) g.setInitializer(i, Graphs.floatTensor(t.getName(), wq, q.weightShape()));
            }
        }
        return model.withGraph(g.build());
    }

    static float[] fakeQuant(float[] w, long[] shape, int bits) {
        double max = 0;
        for (float v : w) max = Math.max(max, Math.abs(v));
        return FakeQuant.apply(w, shape, SymmetricQuantizer.fromClip(bits, true, max));
    }
}
