package io.quantcal.kernels.stats;

import java.util.List;
import java.util.Locale;

/** The calibrators by the names the configuration uses ({@code quantcal.quantization.activations.calibrator}). */
public final class Calibrators {

    /** Valid names, in the order the documentation lists them. */
    public static final List<String> NAMES = List.of("minmax", "percentile", "entropy", "mse");

    private Calibrators() {}

    /**
     * The calibrator called {@code name} (case-insensitive). {@code percentile} is used by the percentile
     * calibrator only (e.g. 99.99) and must be in [50, 100] when that one is asked for.
     */
    public static Calibrator byName(String name, double percentile) {
        String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
        return switch (n) {
            case "minmax" -> new MinMaxCalibrator();
            case "percentile" -> new PercentileCalibrator(percentile);
            case "entropy" -> new EntropyCalibrator();
            case "mse" -> new MseCalibrator();
            default -> throw new IllegalArgumentException("unknown calibrator '" + name + "'; valid names: "
                    + String.join(", ", NAMES));
        };
    }
}
