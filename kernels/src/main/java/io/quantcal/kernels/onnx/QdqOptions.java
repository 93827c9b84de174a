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
 */
public record QdqOptions(boolean quantizeBias, boolean weightsAsQdqPair, boolean pairPerConsumer)
        implements Serializable {

    /** The ONNX Runtime quantization tool's layout: int32 bias, integer weights, shared pairs. */
    public static QdqOptions onnxRuntime() {
        return new QdqOptions(true, false, false);
    }

    /** TensorRT's explicit-quantization layout: float bias, weights as Q/DQ pairs, a pair per reader. */
    public static QdqOptions tensorRt() {
        return new QdqOptions(false, true, true);
    }
}
