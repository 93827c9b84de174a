package io.quantcal.kernels.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.onnx.Graphs;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Runs small ONNX graphs in ONNX Runtime as the reference for the ND4J kernels; test fixtures. */
final class OrtReference {

    static final long OPSET = 13;

    private OrtReference() {}

    /** Runs a graph with one float input "x" and one output "y"; {@code initializers} are already built. */
    static INDArray run(List<NodeProto> nodes, List<TensorProto> initializers, INDArray x, boolean optimize)
            throws Exception {
        ModelProto model = Graphs.model(OPSET, nodes, initializers,
                List.of(Graphs.floatValue("x", x.shape())), List.of(unshapedFloat("y")));
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setIntraOpNumThreads(1);
            if (!optimize) so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            try (OrtSession s = env.createSession(model.toByteArray(), so);
                 OnnxTensor in = OnnxTensor.createTensor(env, FloatBuffer.wrap(floats(x)), x.shape());
                 OrtSession.Result r = s.run(Map.of("x", in))) {
                OnnxTensor y = (OnnxTensor) r.get(0);
                long[] shape = y.getInfo().getShape();
                FloatBuffer fb = y.getFloatBuffer();
                float[] data = new float[fb.remaining()];
                fb.get(data);
                return Nd4j.create(data, shape, 'c');
            }
        }
    }

    /** One node "op" reading x, then the named initializers, writing y (optionally followed by more nodes). */
    static INDArray runNode(String op, Map<String, Object> attributes, INDArray x, Map<String, INDArray> inits)
            throws Exception {
        List<String> inputs = new ArrayList<>();
        inputs.add("x");
        List<TensorProto> tensors = new ArrayList<>();
        inits.forEach((name, a) -> {
            inputs.add(name);
            tensors.add(tensor(name, a));
        });
        return run(List.of(Graphs.node(op, "n", inputs, List.of("y"), attributes)), tensors, x, true);
    }

    static TensorProto tensor(String name, INDArray a) {
        return Graphs.floatTensor(name, floats(a), a.shape());
    }

    static ValueInfoProto unshapedFloat(String name) {
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT.getNumber())))
                .build();
    }

    /** Row-major float32 values. */
    static float[] floats(INDArray a) {
        return a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    }

    /** Deterministic uniform values in [-1, 1). */
    static INDArray uniform(long seed, long... shape) {
        Random r = new Random(seed);
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = 2 * r.nextFloat() - 1;
        return Nd4j.create(v, shape, 'c');
    }

    /** max |a − b| / max |b| within tolerance, shapes equal. */
    static void assertClose(INDArray expected, INDArray actual, double relTol) {
        assertArrayEquals(expected.shape(), actual.shape(), "shape");
        float[] e = floats(expected), a = floats(actual);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < e.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((double) e[i] - a[i]));
            maxRef = Math.max(maxRef, Math.abs(e[i]));
        }
        assertTrue(maxRef > 0, "reference is all zero");
        double rel = maxDiff / maxRef;
        assertTrue(rel <= relTol, "relative error " + rel + " > " + relTol + " (max diff " + maxDiff + ", shape "
                + Arrays.toString(expected.shape()) + ")");
    }
}
