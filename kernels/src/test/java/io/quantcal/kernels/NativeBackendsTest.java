package io.quantcal.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.onnx.Graphs;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Both native backends load in one JVM and compute: ND4J (oneDNN build) and ONNX Runtime. */
class NativeBackendsTest {

    @Test
    void nd4jMatmulOfHandWorkedMatrices() {
        INDArray a = Nd4j.createFromArray(new float[][] {{1, 2}, {3, 4}});
        INDArray b = Nd4j.createFromArray(new float[][] {{5, 6}, {7, 8}});
        assertArrayEquals(new float[] {19, 22, 43, 50}, a.mmul(b).reshape(4).toFloatVector());
    }

    @Test
    void onnxRuntimeRunsAModelBuiltWithGraphs() throws Exception {
        var model = Graphs.model(13,
                List.of(Graphs.node("Add", "add", List.of("x", "c"), List.of("y"))),
                List.of(Graphs.floatTensor("c", new float[] {10, 20}, 2)),
                List.of(Graphs.floatValue("x", 2)), List.of(Graphs.floatValue("y", 2)));
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(model.toByteArray(), new OrtSession.SessionOptions());
             OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(new float[] {1, 2}), new long[] {2});
             OrtSession.Result r = s.run(Map.of("x", x))) {
            assertArrayEquals(new float[] {11, 22}, (float[]) r.get(0).getValue());
        }
        assertEquals("1.28.0", env.getVersion());
    }
}
