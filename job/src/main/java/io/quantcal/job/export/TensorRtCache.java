package io.quantcal.job.export;

import io.quantcal.job.table.ScaleRow;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * TensorRT calibration cache (text): a {@code TRT-<version>-EntropyCalibration2} header, then one
 * {@code <tensor>: <8 hex digits>} line per activation tensor, the digits being the big-endian IEEE-754
 * float32 bit pattern of the symmetric int8 scale amax/127.
 *
 * <p>TensorRT's implicit calibration is symmetric int8 whatever quantcal's activation grid is, so the
 * scale written is max(|range_min|, |range_max|)/127 of the tensor's calibrated range.
 */
public final class TensorRtCache {

    private TensorRtCache() {}

    public static String write(List<ScaleRow> rows, int tensorRtVersion) {
        Map<String, Double> scale = new LinkedHashMap<>();
        for (ScaleRow r : rows) {
            if (!r.role().equals("activation")) continue;
            // a row already on TensorRT's grid (int8 [-127, 127], zero point 0: export.profile = tensorrt) is written
            // as it is, so the cache and the QDQ model hold the same float32 scale; others get amax / 127
            double s = r.signed() && r.zeroPoint() == 0 && r.bits() == 8 && r.qmin() == -127 && r.qmax() == 127
                    ? r.scale() : Math.max(Math.abs(r.rangeMin()), Math.abs(r.rangeMax())) / 127.0;
            scale.merge(r.tensor(), s, Math::max);
        }
        StringBuilder sb = new StringBuilder("TRT-").append(tensorRtVersion).append("-EntropyCalibration2\n");
        for (Map.Entry<String, Double> e : scale.entrySet()) {
            sb.append(e.getKey()).append(": ").append(hex(e.getValue())).append('\n');
        }
        return sb.toString();
    }

    /** Big-endian IEEE-754 float32 bits, 8 lower-case hex digits: 1/127 → 3c010204. */
    public static String hex(double scale) {
        return String.format("%08x", Float.floatToIntBits((float) scale));
    }

    /** Reads a cache line's scale back, as TensorRT does (split at ": ", parse base 16). */
    public static float parse(String hexDigits) {
        return Float.intBitsToFloat((int) Long.parseLong(hexDigits, 16));
    }
}
