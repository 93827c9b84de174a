package io.quantcal.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import org.junit.jupiter.api.Assertions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quantcal.job.data.ImagePreprocessor;
import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.kernels.onnx.TestModels;
import io.quantcal.kernels.runtime.ElementType;
import io.quantcal.kernels.runtime.InputTensor;
import io.quantcal.kernels.runtime.ModelRunner;
import io.quantcal.kernels.runtime.RunnerOptions;
import io.quantcal.job.table.ScaleRow;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model whose input is uint8 pixels (it casts and normalises them itself, as TensorFlow detection exports and
 * models with built-in preprocessing do) is fed the images' 8-bit pixels: its scale table and answers are those of
 * the same layers fed pixel / 255 as floats, and its QDQ model takes uint8 in ONNX Runtime.
 */
class Uint8InputJobTest extends SparkJobTest {

    @TempDir
    Path tmp;

    @Test
    void pixelsAreTheDecodedBytesCroppedAndLaidOutUnnormalised() throws Exception {
        // a 4 x 3 RGB image; crop 2 x 1 at its centre (x0 = 1, y0 = 1), NHWC and NCHW
        BufferedImage img = new BufferedImage(4, 3, BufferedImage.TYPE_3BYTE_BGR);
        for (int y = 0; y < 3; y++) for (int x = 0; x < 4; x++) img.getRaster().setPixel(x, y, new int[] {10 * x + y, 200 + x, 255 - y});
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        ImageIO.write(img, "png", png);
        var pre = new QuantcalConfig.Preprocess(3, 0, 2, 1, 0.5, new double[] {1, 1, 1}, new double[] {2, 2, 2}, "NHWC");
        // pixels (1,1) = (11, 201, 254), (2,1) = (21, 202, 254); scale, mean, std not applied
        Assertions.assertArrayEquals(new byte[] {11, (byte) 201, (byte) 254, 21, (byte) 202, (byte) 254},
                new ImagePreprocessor(pre).pixels("img.png", png.toByteArray()));
        var nchw = new QuantcalConfig.Preprocess(3, 0, 2, 1, 0.5, new double[] {1, 1, 1}, new double[] {2, 2, 2}, "NCHW");
        Assertions.assertArrayEquals(new byte[] {11, 21, (byte) 201, (byte) 202, (byte) 254, (byte) 254},
                new ImagePreprocessor(nchw).pixels("img.png", png.toByteArray()));
        // resized: the float pipeline's values (scale 1, mean 0, std 1) rounded to the nearest integer
        var resize = new QuantcalConfig.Preprocess(3, 5, 6, 5, 1, new double[] {0, 0, 0}, new double[] {1, 1, 1}, "NCHW");
        float[] f = new ImagePreprocessor(resize).apply("img.png", png.toByteArray());
        byte[] b = new ImagePreprocessor(resize).pixels("img.png", png.toByteArray());
        assertEquals(f.length, b.length);
        boolean between = false;
        for (int i = 0; i < f.length; i++) {
            assertEquals(Math.round(f[i]), b[i] & 0xff, "value " + i + " (" + f[i] + ")");
            between |= f[i] != Math.round(f[i]);
        }
        Assertions.assertTrue(between, "the resize interpolates, so rounding is exercised");
    }

    @Test
    void aUint8ImageModelGetsTheTableOfItsFloatEquivalent() throws Exception {
        Path u8 = tmp.resolve("u8.onnx");
        Files.write(u8, TestModels.normalisesItsInput(true).toByteArray());
        Path f32 = tmp.resolve("f32.onnx");
        Files.write(f32, TestModels.normalisesItsInput(false).toByteArray());
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        String[] common = {"calibration.limit=64", "evaluation.limit=64", "pipeline=[calibrate,export,evaluate]"};
        QuantcalJob.Result a = QuantcalJob.run(spark(), JobFixtures.config(u8.toString(), JobFixtures.CALIB,
                tmp.resolve("a").toString(), JobFixtures.concat(common, "calibration.preprocess.layout=NHWC")),
                new PrintStream(console, true, StandardCharsets.UTF_8));
        String text = console.toString(StandardCharsets.UTF_8);
        Assertions.assertTrue(text.contains("data: model input x is uint8: the images are fed as their 8-bit pixels (resize,"
                + " crop, channels, layout); quantcal.calibration.preprocess scale, mean and std are not applied"), text);
        // the float model fed pixel * (1/255): the same tensor xt up to float rounding of the division
        QuantcalJob.Result b = QuantcalJob.run(spark(), JobFixtures.config(f32.toString(), JobFixtures.CALIB,
                tmp.resolve("b").toString(), JobFixtures.concat(common, "calibration.preprocess.mean=[0]",
                        "calibration.preprocess.std=[1]")), new PrintStream(new ByteArrayOutputStream()));
        assertEquals(b.rows().size(), a.rows().size());
        for (int i = 0; i < a.rows().size(); i++) {
            ScaleRow x = a.rows().get(i), y = b.rows().get(i);
            assertEquals(y.node() + "/" + y.tensor() + "/" + y.channel(), x.node() + "/" + x.tensor() + "/" + x.channel());
            assertEquals(y.scale(), x.scale(), 1e-6 * y.scale(), x.tensor());
            assertEquals(y.zeroPoint(), x.zeroPoint(), x.tensor());
        }
        ScaleRow in = a.rows().stream().filter(r -> r.tensor().equals("xt")).findFirst().orElseThrow();
        assertEquals(0.0, in.rangeMin(), 0.0, "pixel 0 / 255");
        Assertions.assertTrue(in.rangeMax() < 1 + 1e-6 && in.rangeMax() > 0.9, "max pixel / 255 (the grid's top, 255 steps): " + in.rangeMax());
        JsonNode ea = runJson(a), eb = runJson(b);
        assertEquals("[\"x uint8 [N, 28, 28, 1]\"]", ea.get("passes").get("calibrate").get("inputs").toString());
        for (String k : List.of("top1_fp32", "top1_quantized", "top1_agreement")) {
            assertEquals(eb.get("passes").get("evaluate").get(k).asDouble(), ea.get("passes").get("evaluate").get(k).asDouble(), 1e-9, k);
        }
        // the QDQ model takes the uint8 pixels in ONNX Runtime
        var qdq = io.quantcal.kernels.onnx.OnnxModel.load(AdaRoundPassTest.local(a.output()).resolve("model_qdq.onnx"));
        try (ModelRunner r = ModelRunner.open(qdq, RunnerOptions.singleThreaded())) {
            byte[] pixels = new byte[28 * 28];
            for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) (i % 256);
            var out = r.runInputs(Map.of("x", new InputTensor("x", ElementType.UINT8, new long[] {1, 28, 28, 1}, pixels)));
            assertEquals(10, out.get("logits").data().length);
        }
    }

    static JsonNode runJson(QuantcalJob.Result r) throws Exception {
        return new ObjectMapper().readTree(AdaRoundPassTest.local(r.output()).resolve("run.json").toFile());
    }
}
