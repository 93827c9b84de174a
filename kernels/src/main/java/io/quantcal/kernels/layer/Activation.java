package io.quantcal.kernels.layer;

import java.io.Serializable;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * An activation fused after a layer, as ONNX graphs place it right after Conv/Gemm/MatMul: none, Relu,
 * or Clip(min, max) (Relu6 is Clip(0, 6)). The layer's output quantizer sees the activated values, so a
 * scale search must compare outputs after the activation.
 */
public record Activation(Kind kind, float min, float max) implements Serializable {

    public enum Kind { NONE, RELU, CLIP }

    public static final Activation NONE = new Activation(Kind.NONE, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY);
    public static final Activation RELU = new Activation(Kind.RELU, 0f, Float.POSITIVE_INFINITY);

    public Activation {
        if (kind == null) {
            throw new IllegalArgumentException("Activation: kind must not be null");
        }
        if (!(min <= max)) {
            throw new IllegalArgumentException("Activation " + kind + ": min must be <= max, got [" + min + ", " + max + "]");
        }
    }

    /** ONNX Clip: y = min(max(x, min), max). */
    public static Activation clip(float min, float max) {
        return new Activation(Kind.CLIP, min, max);
    }

    /** Applies the activation to {@code y} in place and returns it. */
    public INDArray applyInPlace(INDArray y) {
        switch (kind) {
            case NONE -> { }
            case RELU -> Transforms.relu(y, false);
            case CLIP -> {
                if (min != Float.NEGATIVE_INFINITY) Transforms.max(y, min, false);
                if (max != Float.POSITIVE_INFINITY) Transforms.min(y, max, false);
            }
        }
        return y;
    }
}
