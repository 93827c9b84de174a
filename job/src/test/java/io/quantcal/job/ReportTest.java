package io.quantcal.job;

import static io.quantcal.job.JobFixtures.CALIB;
import static io.quantcal.job.JobFixtures.RESNET;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quantcal.job.report.RunReport;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * report.html: written beside run.json, self-contained, with the coverage, the per-layer metrics of each method that
 * ran, the activation histograms with their clip, one layer's per-channel scales and the evaluation; opened in headless
 * Chromium, whose layout places every plot with a size and whose screenshot shows the plots' bars drawn.
 */
class ReportTest extends SparkJobTest {

    /** The data bars' colour (Charts.BARS), as Chromium paints it. */
    static final int[] BARS = {0x4C, 0x72, 0xB0};

    @TempDir
    Path tmp;

    @Test
    void theReportShowsTheRunAndChromiumDrawsEveryPlot() throws Exception {
        String output = tmp.resolve("out").toString();
        QuantcalJob.Result r = QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output, "run-id=report",
                "pipeline=[fold-bn,calibrate,easyquant,adaround,export,evaluate]",
                "quantization.activations.calibrator=percentile", "calibration.limit=24", "evaluation.limit=50", "evaluation.speed=true",
                "easyquant.samples=8", "easyquant.segments=6", "easyquant.rounds=1", "easyquant.mode=parallel",
                "adaround.samples=4", "adaround.iterations=10", "adaround.resume=false", "adaround.inputs=fp"), out);
        Path report = Path.of(output, RunReport.FILE);
        Assertions.assertTrue(Files.isRegularFile(report), "report.html beside run.json");
        assertEquals(RunReport.FILE, r.summary().get("report"));
        String html = Files.readString(report);

        // self-contained: nothing to fetch (the only URLs are SVG's namespace names)
        Assertions.assertFalse(html.contains("<script") || html.contains("<link") || html.contains("<img")
                || html.contains("<iframe") || html.contains("url(http"), "nothing loaded from elsewhere");
        Matcher urls = Pattern.compile("(?:src|href)\\s*=\\s*\"([^\"]*)\"").matcher(html);
        while (urls.find()) Assertions.fail("a reference to " + urls.group(1));

        // coverage: every Conv/Gemm of the model, quantized
        Assertions.assertTrue(html.contains("7 of 7 Conv/ConvTranspose/Gemm/MatMul nodes quantized; 0 left in FP32."), html);
        assertEquals(7, count(html, "<tr class=\"q\">"));
        // per layer: both methods' before and after, and evaluate's SQNR
        Assertions.assertTrue(html.contains("<th>easyquant cosine before → after</th>"));
        Assertions.assertTrue(html.contains("<th>adaround MSE round-to-nearest → adaround</th>"));
        Assertions.assertTrue(html.contains("<th>output SQNR (dB)</th>"));
        Assertions.assertTrue(java.util.regex.Pattern.compile("<th>speed on this machine</th><td>FP32 [0-9.]+ ms, quantized [0-9.]+ ms: "
                + "[0-9.]+× \\(batch 8, 1 intra-op thread\\(s\\), median of [0-9]+ runs\\)").matcher(html).find(), "speed row");
        // and each layer after each method that ran, SQNR and cosine against FP32
        Assertions.assertTrue(html.contains("<tr><th>layer</th><th>after calibrate: SQNR / cosine</th><th>after easyquant: SQNR"
                + " / cosine</th><th>after adaround: SQNR / cosine</th></tr>"), html);
        Assertions.assertTrue(Pattern.compile("<tr><td>/fc/Gemm</td>(<td>\\d+\\.\\d\\d / \\d\\.\\d{6}</td>){3}</tr>")
                .matcher(html).find(), html);
        Assertions.assertTrue(Pattern.compile("<td>/stem/stem.0/Conv</td><td>Conv</td><td>int8 per-channel symmetric, adaround \\(mse"
                + " [0-9.e-]+ → [0-9.e-]+\\)</td><td>uint8 per-tensor affine, easyquant \\(cosine [0-9.]+ → [0-9.]+\\)</td>"
                + "<td>\\d\\.\\d{6} → \\d\\.\\d{6}</td><td>[0-9.e-]+ → [0-9.e-]+</td><td>\\d+\\.\\d\\d</td></tr>").matcher(html).find(), html);
        // activations: the percentile calibrator's histograms, one per measured tensor, each with its clip
        Assertions.assertTrue(html.contains("Calibrator <b>percentile</b>: each histogram"));
        assertEquals(10, count(html, "data-plot=\"histogram\""));
        Assertions.assertTrue(html.contains("<td>input</td>"));
        Assertions.assertTrue(html.contains("data-plot=\"per-channel\""));
        Assertions.assertTrue(html.contains("Layer <b>"));
        Assertions.assertTrue(html.contains("<tr><th>top-1 agreement</th>"));
        List<String> kinds = List.of("layer-sqnr", "method-sqnr", "method-cosine", "easyquant-cosine", "adaround-mse",
                "per-channel");
        for (String k : kinds) assertEquals(1, count(html, "data-plot=\"" + k + "\""), k);

        // Chromium: where each plot lands and how much of it is drawn
        List<Plot> plots = layout(report);
        assertEquals(16, plots.size() - 1, plots.toString());
        Plot page = plots.get(0);
        BufferedImage shot = screenshot(report, page.width, page.height);
        for (Plot p : plots.subList(1, plots.size())) {
            Assertions.assertTrue(p.width >= 600 && p.height >= 250, "a plot of " + p.width + "x" + p.height + ": " + p);
            Assertions.assertTrue(p.shapes >= 20, "drawn shapes in " + p);
            Pixels px = pixels(shot, p);
            Assertions.assertTrue(px.ink > 0.03, "ink on " + p + ": " + px);
            Assertions.assertTrue(px.colours > 8, "colours on " + p + ": " + px);
            Assertions.assertTrue(px.bars > 40, "data bars drawn on " + p + ": " + px);
        }
    }

    @Test
    void withMinmaxTheReportSaysThereAreNoHistograms() throws Exception {
        String output = tmp.resolve("minmax").toString();
        QuantcalJob.run(spark(), JobFixtures.config(RESNET, CALIB, output, "run-id=minmax", "pipeline=[fold-bn,calibrate]",
                "calibration.limit=24"), out);
        String html = Files.readString(Path.of(output, RunReport.FILE));
        Assertions.assertTrue(html.contains("Calibrator <b>minmax</b>: one pass over the data gathers each tensor's min and"
                + " max only, so there are no histograms to show"), html);
        assertEquals(0, count(html, "data-plot=\"histogram\""));
        assertEquals(1, count(html, "data-plot=\"per-channel\""));
        Assertions.assertTrue(html.contains("<p>The pipeline has no evaluate.</p>"));
        assertEquals(7 + 10, count(html, "<tr><td>"), "a row per layer and per measured activation tensor");
    }

    record Plot(String kind, int x, int y, int width, int height, int shapes) {}

    record Pixels(double ink, int colours, int bars) {}

    /** The page with a script appended that writes each plot's box and drawn shapes into the DOM Chromium dumps. */
    static List<Plot> layout(Path report) throws Exception {
        String probe = """
                <script>
                (function () {
                  var out = [];
                  document.querySelectorAll('figure.plot').forEach(function (f) {
                    var svg = f.querySelector('svg');
                    var r = svg ? svg.getBoundingClientRect() : null;
                    var shapes = 0;
                    if (svg) svg.querySelectorAll('path,rect,line,polyline,polygon,text').forEach(function (e) {
                      var b = e.getBBox(); if (b.width > 0 || b.height > 0) shapes++; });
                    out.push([f.dataset.plot, r ? Math.round(r.left + window.scrollX) : -1,
                      r ? Math.round(r.top + window.scrollY) : -1, r ? Math.round(r.width) : 0,
                      r ? Math.round(r.height) : 0, shapes].join(','));
                  });
                  var pre = document.createElement('pre');
                  pre.id = 'plot-check';
                  pre.textContent = 'page,0,0,' + document.documentElement.scrollWidth + ','
                      + document.documentElement.scrollHeight + ',0\\n' + out.join('\\n');
                  document.body.appendChild(pre);
                })();
                </script>
                </body>""";
        Path probed = report.resolveSibling("probed.html");
        Files.writeString(probed, Files.readString(report).replace("</body>", probe));
        String dom = chromium(probed, "--window-size=1200,800", "--dump-dom");
        Matcher m = Pattern.compile("<pre id=\"plot-check\">([^<]*)</pre>").matcher(dom);
        Assertions.assertTrue(m.find(), "Chromium ran the probe: " + dom.substring(Math.max(0, dom.length() - 2000)));
        List<Plot> plots = new ArrayList<>();
        for (String line : m.group(1).strip().split("\n")) {
            String[] f = line.split(",");
            plots.add(new Plot(f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), Integer.parseInt(f[3]),
                    Integer.parseInt(f[4]), Integer.parseInt(f[5])));
        }
        return plots;
    }

    static BufferedImage screenshot(Path report, int width, int height) throws Exception {
        Path png = report.resolveSibling("report.png");
        chromium(report, "--window-size=" + width + "," + height, "--screenshot=" + png);
        BufferedImage img = ImageIO.read(png.toFile());
        Assertions.assertNotNull(img, "Chromium wrote " + png);
        assertEquals(height, img.getHeight(), "the whole page in one screenshot");
        return img;
    }

    /** Non-white share, distinct colours (coarsely) and pixels of the data bars' colour inside the plot's box. */
    static Pixels pixels(BufferedImage img, Plot p) {
        long ink = 0, all = 0;
        int bars = 0;
        Set<Integer> colours = new HashSet<>();
        for (int y = p.y; y < Math.min(img.getHeight(), p.y + p.height); y++) {
            for (int x = p.x; x < Math.min(img.getWidth(), p.x + p.width); x++) {
                int rgb = img.getRGB(x, y);
                int r = rgb >> 16 & 255, g = rgb >> 8 & 255, b = rgb & 255;
                all++;
                if (r < 235 || g < 235 || b < 235) ink++;
                colours.add((r >> 4) << 8 | (g >> 4) << 4 | b >> 4);
                if (Math.abs(r - BARS[0]) < 24 && Math.abs(g - BARS[1]) < 24 && Math.abs(b - BARS[2]) < 24) bars++;
            }
        }
        return new Pixels(all == 0 ? 0 : (double) ink / all, colours.size(), bars);
    }

    /** Headless Chromium (Debian's chromium package; .ci/run installs it), as root without its sandbox. */
    static String chromium(Path page, String... args) throws Exception {
        String bin = System.getenv().getOrDefault("QUANTCAL_CHROMIUM", "/usr/bin/chromium");
        Assertions.assertTrue(new File(bin).canExecute(), bin + " missing: apt-get install chromium (.ci/run does)");
        List<String> cmd = new ArrayList<>(List.of(bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=" + page.resolveSibling("chromium-profile")));
        cmd.addAll(List.of(args));
        cmd.add(page.toUri().toString());
        Path log = page.resolveSibling("chromium.log");
        Path stdout = page.resolveSibling("chromium.out");
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).redirectOutput(stdout.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            Assertions.fail("chromium did not finish in 120 s: " + cmd);
        }
        assertEquals(0, p.exitValue(), "chromium " + cmd + ": " + Files.readString(log));
        return Files.readString(stdout, StandardCharsets.UTF_8);
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + what.length())) n++;
        return n;
    }
}
