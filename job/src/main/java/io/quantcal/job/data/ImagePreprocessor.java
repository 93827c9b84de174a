package io.quantcal.job.data;

import io.quantcal.job.config.QuantcalConfig.Preprocess;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.Serializable;
import javax.imageio.ImageIO;

/**
 * Decodes a PNG/JPEG image and turns it into a model input: grayscale or RGB, shorter side resized
 * (bilinear, half-pixel centres), center crop, x = (pixel·scale − mean[c]) / std[c], NCHW or NHWC; for a uint8 input
 * the 8-bit pixels themselves ({@link #pixels}).
 */
public final class ImagePreprocessor implements Serializable {

    private final Preprocess p;

    public ImagePreprocessor(Preprocess p) {
        this.p = p;
    }

    /** The preprocessed values; throws BadSampleException naming {@code source}. */
    public float[] apply(String source, byte[] bytes) {
        return (float[]) decode(source, bytes, false);
    }

    /**
     * For a uint8 image input: the 8-bit pixels after the resize and the center crop, in the configured channels and
     * layout, without scale, mean and std (a model that takes uint8 normalises its input itself); a resized value is
     * rounded to the nearest integer (halves up), as 8-bit image libraries store it.
     */
    public byte[] pixels(String source, byte[] bytes) {
        return (byte[]) decode(source, bytes, true);
    }

    private Object decode(String source, byte[] bytes, boolean pixels) {
        BufferedImage img;
        try {
            img = ImageIO.read(new ByteArrayInputStream(bytes));
        } catch (IOException | RuntimeException e) {
            throw new BadSampleException("image " + source + " cannot be decoded: " + e.getMessage());
        }
        if (img == null) {
            throw new BadSampleException("image " + source + " cannot be decoded: not a PNG or JPEG image");
        }
        float[][] planes = channels(img);
        int w = img.getWidth(), h = img.getHeight();
        if (p.resize() > 0) {
            double f = (double) p.resize() / Math.min(w, h);
            int nw = Math.max(1, (int) Math.round(w * f)), nh = Math.max(1, (int) Math.round(h * f));
            for (int c = 0; c < planes.length; c++) planes[c] = bilinear(planes[c], w, h, nw, nh);
            w = nw;
            h = nh;
        }
        if (w < p.width() || h < p.height()) {
            throw new BadSampleException("image " + source + " is " + w + "x" + h + " (after resize), expected at least "
                    + p.width() + "x" + p.height() + " for the center crop (quantcal.calibration.preprocess)");
        }
        int x0 = (int) Math.round((w - p.width()) / 2.0), y0 = (int) Math.round((h - p.height()) / 2.0);
        int C = p.channels(), H = p.height(), W = p.width();
        boolean nchw = !"NHWC".equals(p.layout());
        if (pixels) {
            byte[] out = new byte[C * H * W];
            for (int c = 0; c < C; c++) {
                for (int y = 0; y < H; y++) {
                    for (int x = 0; x < W; x++) {
                        long v = Math.max(0, Math.min(255, Math.round(planes[c][(y + y0) * w + (x + x0)])));
                        out[nchw ? (c * H + y) * W + x : (y * W + x) * C + c] = (byte) v;
                    }
                }
            }
            return out;
        }
        float[] out = new float[C * H * W];
        for (int c = 0; c < C; c++) {
            double scale = p.scale(), mean = p.mean()[c], std = p.std()[c];
            for (int y = 0; y < H; y++) {
                for (int x = 0; x < W; x++) {
                    double v = (planes[c][(y + y0) * w + (x + x0)] * scale - mean) / std;
                    out[nchw ? (c * H + y) * W + x : (y * W + x) * C + c] = (float) v;
                }
            }
        }
        return out;
    }

    /** Pixel planes (0..255) in the configured channel count, read from the raster (no colour management). */
    private float[][] channels(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        Raster r = img.getRaster();
        int bands = r.getNumBands();
        boolean direct = img.getColorModel() instanceof ComponentColorModel && r.getSampleModel().getSampleSize(0) == 8;
        float[][] rgb = new float[3][w * h];
        boolean gray = false;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = y * w + x;
                if (direct && bands <= 2) {
                    gray = true;
                    rgb[0][i] = r.getSample(x, y, 0);
                } else if (direct) {
                    rgb[0][i] = r.getSample(x, y, 0);
                    rgb[1][i] = r.getSample(x, y, 1);
                    rgb[2][i] = r.getSample(x, y, 2);
                } else {
                    int argb = img.getRGB(x, y);
                    rgb[0][i] = (argb >> 16) & 0xff;
                    rgb[1][i] = (argb >> 8) & 0xff;
                    rgb[2][i] = argb & 0xff;
                }
            }
        }
        if (p.channels() == 1) {
            if (gray) return new float[][] {rgb[0]};
            float[] l = new float[w * h];
            // ITU-R 601-2 luma, as PIL's convert("L")
            for (int i = 0; i < l.length; i++) l[i] = (rgb[0][i] * 299 + rgb[1][i] * 587 + rgb[2][i] * 114) / 1000f;
            return new float[][] {l};
        }
        if (gray) return new float[][] {rgb[0], rgb[0].clone(), rgb[0].clone()};
        return rgb;
    }

    private static float[] bilinear(float[] src, int w, int h, int nw, int nh) {
        float[] out = new float[nw * nh];
        double sx = (double) w / nw, sy = (double) h / nh;
        for (int y = 0; y < nh; y++) {
            double fy = Math.max(0, Math.min(h - 1, (y + 0.5) * sy - 0.5));
            int y1 = (int) fy, y2 = Math.min(h - 1, y1 + 1);
            double dy = fy - y1;
            for (int x = 0; x < nw; x++) {
                double fx = Math.max(0, Math.min(w - 1, (x + 0.5) * sx - 0.5));
                int x1 = (int) fx, x2 = Math.min(w - 1, x1 + 1);
                double dx = fx - x1;
                double top = src[y1 * w + x1] * (1 - dx) + src[y1 * w + x2] * dx;
                double bot = src[y2 * w + x1] * (1 - dx) + src[y2 * w + x2] * dx;
                out[y * nw + x] = (float) (top * (1 - dy) + bot * dy);
            }
        }
        return out;
    }
}
