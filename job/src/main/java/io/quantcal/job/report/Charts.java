package io.quantcal.job.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Rectangle;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.IntervalMarker;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.StandardXYBarPainter;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.ui.Layer;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * The report's plots: JFreeChart charts drawn onto JFreeSVG's {@link SVGGraphics2D}, returned as inline {@code <svg>}
 * elements. Each chart's ids get their own prefix, so that several SVGs in one page do not share clip paths.
 */
final class Charts {

    static final int WIDTH = 720;
    static final int HEIGHT = 300;
    /** Histograms are drawn with at most this many bars (adjacent bins added up), keeping the page small. */
    static final int MAX_BARS = 256;

    private static final Color BARS = new Color(0x4C72B0);
    private static final Color AFTER = new Color(0xDD8452);
    private static final Color CLIP = new Color(0xC44E52);

    static {
        // no display needed: charts draw onto SVG, fonts are measured headless
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private Charts() {}

    /**
     * An activation's histogram (counts on a log axis) with the grid's clip range shaded and marked, and the observed
     * min/max as dashed lines.
     */
    static String histogram(String id, String title, double lo, double hi, long[] counts, double clipMin, double clipMax,
                            double observedMin, double observedMax) {
        int k = Math.max(1, (counts.length + MAX_BARS - 1) / MAX_BARS);
        double width = (hi - lo) / counts.length;
        XYIntervalSeries s = new XYIntervalSeries("count");
        for (int b = 0; b < counts.length; b += k) {
            long c = 0;
            for (int j = b; j < Math.min(counts.length, b + k); j++) c += counts[j];
            double x0 = lo + b * width;
            double x1 = lo + Math.min(counts.length, b + k) * width;
            // a log axis has no 0: an empty bin is drawn at 0.5, under the axis' 1
            double y = c == 0 ? 0.5 : c;
            s.add((x0 + x1) / 2, x0, x1, y, 0.5, y);
        }
        XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
        data.addSeries(s);
        JFreeChart chart = ChartFactory.createXYBarChart(title, "value", false, "count (log)", data,
                PlotOrientation.VERTICAL, false, false, false);
        XYPlot plot = chart.getXYPlot();
        LogAxis y = new LogAxis("count (log)");
        y.setSmallestValue(0.5);
        plot.setRangeAxis(y);
        XYBarRenderer r = (XYBarRenderer) plot.getRenderer();
        r.setUseYInterval(true); // bars from 0.5 up: a log axis has no 0 to start from
        r.setBarPainter(new StandardXYBarPainter());
        r.setShadowVisible(false);
        r.setDrawBarOutline(false);
        r.setSeriesPaint(0, BARS);
        IntervalMarker kept = new IntervalMarker(clipMin, clipMax, new Color(0x55A868), new BasicStroke(1f), null, null, 0.15f);
        plot.addDomainMarker(kept, Layer.BACKGROUND);
        plot.addDomainMarker(line(clipMin, CLIP, false, "clip " + num(clipMin), true));
        plot.addDomainMarker(line(clipMax, CLIP, false, "clip " + num(clipMax), false));
        plot.addDomainMarker(line(observedMin, Color.DARK_GRAY, true, null, true));
        plot.addDomainMarker(line(observedMax, Color.DARK_GRAY, true, null, false));
        NumberAxis x = (NumberAxis) plot.getDomainAxis();
        double a = Math.min(Math.min(lo, clipMin), observedMin);
        double b = Math.max(Math.max(hi, clipMax), observedMax);
        double pad = (b - a) * 0.03 + 1e-12;
        x.setRange(a - pad, b + pad);
        return svg(id, chart, WIDTH, HEIGHT);
    }

    /**
     * A layer's weights per output channel: the range of the channel's values and the range its quantization grid
     * covers (left axis), and the channel's scale (right axis).
     */
    static String perChannel(String id, String title, double[] dataMin, double[] dataMax, double[] gridMin,
                             double[] gridMax, double[] scale) {
        XYIntervalSeries data = new XYIntervalSeries("weights min..max");
        XYIntervalSeries grid = new XYIntervalSeries("grid range (qmin..qmax)·scale");
        for (int c = 0; c < dataMin.length; c++) {
            data.add(c, c - 0.4, c, (dataMin[c] + dataMax[c]) / 2, dataMin[c], dataMax[c]);
            grid.add(c, c, c + 0.4, (gridMin[c] + gridMax[c]) / 2, gridMin[c], gridMax[c]);
        }
        XYIntervalSeriesCollection ranges = new XYIntervalSeriesCollection();
        ranges.addSeries(data);
        ranges.addSeries(grid);
        JFreeChart chart = ChartFactory.createXYBarChart(title, "output channel", false, "weight value", ranges,
                PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        XYBarRenderer r = (XYBarRenderer) plot.getRenderer();
        r.setBarPainter(new StandardXYBarPainter());
        r.setShadowVisible(false);
        r.setUseYInterval(true);
        r.setDrawBarOutline(false);
        r.setSeriesPaint(0, BARS);
        r.setSeriesPaint(1, new Color(0x55A868));
        XYSeries s = new XYSeries("scale");
        for (int c = 0; c < scale.length; c++) s.add(c, scale[c]);
        plot.setDataset(1, new XYSeriesCollection(s));
        NumberAxis right = new NumberAxis("scale");
        right.setAutoRangeIncludesZero(true);
        plot.setRangeAxis(1, right);
        plot.mapDatasetToRangeAxis(1, 1);
        XYLineAndShapeRenderer line = new XYLineAndShapeRenderer(true, scale.length <= 64);
        line.setSeriesPaint(0, CLIP);
        plot.setRenderer(1, line);
        return svg(id, chart, WIDTH, HEIGHT + 40);
    }

    /** Per-layer values, one bar per series and layer (e.g. before and after a method). */
    static String layerBars(String id, String title, String axis, List<String> layers, Map<String, double[]> series,
                            boolean log) {
        DefaultCategoryDataset d = new DefaultCategoryDataset();
        for (Map.Entry<String, double[]> e : series.entrySet()) {
            for (int i = 0; i < layers.size(); i++) {
                double v = e.getValue()[i];
                if (Double.isFinite(v) && (!log || v > 0)) d.addValue(v, e.getKey(), layers.get(i));
            }
        }
        JFreeChart chart = ChartFactory.createBarChart(title, "layer", axis, d, PlotOrientation.HORIZONTAL,
                series.size() > 1, false, false);
        CategoryPlot plot = chart.getCategoryPlot();
        BarRenderer r = (BarRenderer) plot.getRenderer();
        if (log) {
            // bars start a decade under the smallest value: a log axis has no 0 to start from
            double min = Double.POSITIVE_INFINITY;
            for (double[] v : series.values()) for (double x : v) if (x > 0 && Double.isFinite(x)) min = Math.min(min, x);
            double base = Double.isFinite(min) ? Math.pow(10, Math.floor(Math.log10(min)) - 1) : 1e-12;
            LogAxis y = new LogAxis(axis);
            y.setSmallestValue(base);
            plot.setRangeAxis(y);
            r.setBase(base);
            r.setIncludeBaseInRange(true);
        } else {
            NumberAxis y = (NumberAxis) plot.getRangeAxis();
            y.setAutoRangeIncludesZero(false);
        }
        r.setBarPainter(new StandardBarPainter());
        r.setShadowVisible(false);
        r.setSeriesPaint(0, BARS);
        r.setSeriesPaint(1, AFTER);
        plot.getDomainAxis().setTickLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
        int height = Math.max(HEIGHT, 80 + layers.size() * (12 + 8 * series.size()));
        return svg(id, chart, WIDTH, height);
    }

    private static ValueMarker line(double x, Color color, boolean dashed, String label, boolean left) {
        ValueMarker m = new ValueMarker(x, color, dashed
                ? new BasicStroke(1f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 1f, new float[] {4f, 3f}, 0f)
                : new BasicStroke(1.5f));
        if (label != null) {
            m.setLabel(label);
            m.setLabelPaint(color);
            // the label inside the clip band: right of the lower line, left of the upper one
            m.setLabelAnchor(left ? RectangleAnchor.TOP_RIGHT : RectangleAnchor.TOP_LEFT);
            m.setLabelTextAnchor(left ? TextAnchor.TOP_LEFT : TextAnchor.TOP_RIGHT);
        }
        return m;
    }

    static String num(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }

    private static String svg(String id, JFreeChart chart, int w, int h) {
        chart.setBackgroundPaint(Color.WHITE);
        chart.getPlot().setBackgroundPaint(new Color(0xF7F7F7));
        chart.setAntiAlias(true);
        SVGGraphics2D g = new SVGGraphics2D(w, h);
        g.setDefsKeyPrefix(id + "-");
        // two decimals are a hundredth of a pixel: enough, and half the size of full doubles
        g.setGeomDoubleConverter(v -> String.format(Locale.ROOT, "%.2f", v));
        chart.draw(g, new Rectangle(0, 0, w, h));
        return g.getSVGElement(id);
    }
}
