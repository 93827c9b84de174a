package io.quantcal.kernels.onnx;

import java.util.Locale;

/**
 * A deployment target of the QDQ model: where Q/DQ pairs go and which grids the target accepts.
 *
 * <ul>
 *   <li>{@link #ORT}: ONNX Runtime's CPU provider, which fuses DequantizeLinear → op → QuantizeLinear into
 *       its integer kernels (QLinearConv, QGemm, QLinearAdd, ...): inputs and outputs of the quantized ops are
 *       quantized, Relu/Clip folded into the output quantization, shape-only ops share their input's
 *       parameters (ONNX Runtime's own quantizer, QDQ format).</li>
 *   <li>{@link #TENSORRT}: TensorRT's explicit quantization: Q/DQ on the inputs of quantizable ops and of
 *       residual Adds, symmetric int8 activations with zero point 0, float weights with a Q/DQ pair,
 *       float biases, a Q/DQ pair per reader.</li>
 * </ul>
 */
public enum QdqProfile {
    ORT("ort"),
    TENSORRT("tensorrt");

    private final String id;

    QdqProfile(String id) {
        this.id = id;
    }

    public String id() {
        return id;
    }

    /** The profile called {@code id} (ort, tensorrt); null when there is none. */
    public static QdqProfile byId(String id) {
        for (QdqProfile p : values()) if (p.id.equals(id.toLowerCase(Locale.ROOT))) return p;
        return null;
    }

    /** TensorRT accepts only symmetric signed int8 activations (zero point 0). */
    public boolean signedSymmetricActivations() {
        return this == TENSORRT;
    }

    /** The QDQ layout of the profile's exporter (ORT: the configured options; TensorRT: its own). */
    public QdqOptions options(QdqOptions configured) {
        return this == TENSORRT ? QdqOptions.tensorRt() : configured;
    }
}
