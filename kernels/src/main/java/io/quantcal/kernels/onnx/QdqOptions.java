package io.quantcal.kernels.onnx;

import java.io.Serializable;

/**
 * How {@link QdqExporter} writes the QDQ model.
 *
 * @param quantizeBias     biases as int32 initializers with scale = input scale × weight scale, zero
 *                         point 0, and a DequantizeLinear (ONNX Runtime); false keeps them float
 * @param weightsAsQdqPair weights as a float initializer followed by QuantizeLinear → DequantizeLinear
 *                         (TensorRT), instead of an integer initializer and a DequantizeLinear (ONNX Runtime)
 * @param pairPerConsumer  one activation Q → DQ pair for each node that reads the tensor (TensorRT),
 *                         instead of one pair shared by all readers (ONNX Runtime)
 * @param unsignedWeights  signed 8-bit (and narrower) weight grids written as uint8 codes + 128 with zero point + 128:
 *                         the same values after DequantizeLinear, but ONNX Runtime then runs its u8·u8 kernels, exact
 *                         on every CPU, where its u8·s8 kernels add pairs of products in saturating int16 on x86 CPUs
 *                         without VNNI (see {@link CpuFeatures})
 */
public record QdqOptions(boolean quantizeBias, boolean weightsAsQdqPair, boolean pairPerConsumer, boolean unsignedWeights)
        implements Serializable {

    public QdqOptions(boolean quantizeBias, boolean weightsAsQdqPair, boolean pairPerConsumer) {
        this(quantizeBias, weightsAsQdqPair, pairPerConsumer, false);
    }

    /** These options with {@link #unsignedWeights} as given. */
    public QdqOptions withUnsignedWeights(boolean unsigned) {
        return new QdqOptions(quantizeBias, weightsAsQdqPair, pairPerConsumer, unsigned);
    }

    /** The ONNX Runtime quantization tool's layout: int32 bias, integer weights, shared pairs. */
    public static QdqOptions onnxRuntime() {
        return new QdqOptions(true, false, false);
    }

    /** TensorRT's explicit-quantization layout: float bias, weights as Q/DQ pairs, a pair per reader. */
    public static QdqOptions tensorRt() {
        return new QdqOptions(false, true, true);
    }
}
