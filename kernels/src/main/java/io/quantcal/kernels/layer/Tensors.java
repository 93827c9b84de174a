package io.quantcal.kernels.layer;

import java.nio.FloatBuffer;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;

/** Shape checks and float32 access shared by the layer kernels and the metrics. */
final class Tensors {

    private Tensors() {}

    static INDArray asFloat(INDArray a) {
        return a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT);
    }

    /**
     * {@code a} as float32 in dense row-major layout starting at its buffer's first element, copying only
     * when it is not already (views, 'f' order, other types).
     */
    static INDArray dense(INDArray a) {
        INDArray f = asFloat(a);
        boolean ok = f.ordering() == 'c' && f.offset() == 0 && Shape.hasDefaultStridesForShape(f)
                && f.data().length() == f.length();
        return ok ? f : f.dup('c');
    }

    /** The row-major float32 values of {@code a}, as a buffer over native memory (no copy if already dense). */
    static FloatBuffer floats(INDArray a) {
        return dense(a).data().asNioFloat();
    }

    static String shape(INDArray a) {
        return Arrays.toString(a.shape());
    }

    static void checkRank(String what, INDArray a, int rank) {
        if (a == null) throw new IllegalArgumentException(what + " must not be null");
        if (a.rank() != rank) {
            throw new IllegalArgumentException(what + " must have rank " + rank + ", got shape " + shape(a));
        }
    }

    static void checkSameShape(String what, INDArray a, INDArray b) {
        if (a == null || b == null) throw new IllegalArgumentException(what + ": arrays must not be null");
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(what + ": shapes differ, " + shape(a) + " vs " + shape(b));
        }
    }
}
