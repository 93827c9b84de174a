package io.quantcal.kernels.quant;

import java.io.Serializable;

/**
 * The integer grid a quantizer maps onto: {@code bits} wide, signed or unsigned, and for signed
 * symmetric grids the narrow range [−(2^(b−1)−1), 2^(b−1)−1] so that the grid is symmetric about 0
 * (the ONNX Runtime and TensorRT convention for int8 weights).
 */
public record QuantGrid(int bits, boolean signed, boolean narrow) implements Serializable {

    public static final int MIN_BITS = 2;
    public static final int MAX_BITS = 16;

    public QuantGrid {
        if (bits < MIN_BITS || bits > MAX_BITS) {
            throw new IllegalArgumentException("bits must be in [" + MIN_BITS + ", " + MAX_BITS + "], got " + bits);
        }
    }

    /** Full signed grid [−2^(b−1), 2^(b−1)−1] or unsigned [0, 2^b−1]. */
    public static QuantGrid of(int bits, boolean signed) {
        return new QuantGrid(bits, signed, false);
    }

    public int qmin() {
        if (!signed) return 0;
        int half = 1 << (bits - 1);
        return narrow ? -(half - 1) : -half;
    }

    public int qmax() {
        if (!signed) return narrow ? (1 << bits) - 2 : (1 << bits) - 1;
        return (1 << (bits - 1)) - 1;
    }

    /** Number of steps between qmin and qmax. */
    public int levels() {
        return qmax() - qmin();
    }
}
