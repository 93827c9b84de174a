package io.quantcal.kernels.onnx;

import java.util.Arrays;

/**
 * A graph input or output as the model declares it: name, ONNX element type (TensorProto.DataType
 * number) and shape, where a symbolic or missing dimension is -1 and {@code shape} is null when the
 * model does not declare a shape at all.
 */
public record TensorInfo(String name, int elementType, long[] shape) {

    public TensorInfo {
        shape = shape == null ? null : shape.clone();
    }

    @Override
    public long[] shape() {
        return shape == null ? null : shape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && elementType == t.elementType
                && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + elementType) + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + (shape == null ? "[?]" : Arrays.toString(shape));
    }
}
