package io.quantcal.kernels.layer;

import static io.quantcal.kernels.layer.OrtReference.assertClose;
import static io.quantcal.kernels.layer.OrtReference.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.onnx.Graphs;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** GemmForward and MatMulForward against ONNX Runtime running the same single node. */
class GemmMatMulForwardTest {

    static final double TOL = 1e-4;

    static INDArray ortGemm(INDArray x, INDArray w, INDArray b, boolean transB) throws Exception {
        Map<String, INDArray> inits = new LinkedHashMap<>();
        inits.put("w", w);
        if (b != null) inits.put("b", b);
        return OrtReference.runNode("Gemm", Map.of("transB", transB ? 1L : 0L), x, inits);
    }

    @Test
    void gemmWithoutTransB() throws Exception {
        INDArray x = uniform(1, 5, 40), w = uniform(2, 40, 7), b = uniform(3, 7);
        assertClose(ortGemm(x, w, b, false), GemmForward.gemm(x, w, b, false), TOL);
    }

    @Test
    void gemmWithTransB() throws Exception {
        INDArray x = uniform(1, 5, 40), w = uniform(2, 7, 40), b = uniform(3, 7);
        assertClose(ortGemm(x, w, b, true), GemmForward.gemm(x, w, b, true), TOL);
    }

    @Test
    void gemmWithoutBias() throws Exception {
        INDArray x = uniform(4, 3, 16), w = uniform(5, 9, 16);
        assertClose(ortGemm(x, w, null, true), GemmForward.gemm(x, w, null, true), TOL);
    }

    @Test
    void gemmBiasBroadcasts() throws Exception {
        INDArray x = uniform(6, 4, 8), w = uniform(7, 8, 3);
        INDArray full = uniform(8, 4, 3), row = uniform(9, 1, 3), scalar = uniform(10, 1), column = uniform(14, 4, 1);
        assertClose(ortGemm(x, w, column, false), GemmForward.gemm(x, w, column, false), TOL);
        assertClose(ortGemm(x, w, full, false), GemmForward.gemm(x, w, full, false), TOL);
        assertClose(ortGemm(x, w, row, false), GemmForward.gemm(x, w, row, false), TOL);
        assertClose(ortGemm(x, w, scalar, false), GemmForward.gemm(x, w, scalar, false), TOL);
        assertThrows(IllegalArgumentException.class, () -> GemmForward.gemm(x, w, uniform(1, 5), false));
    }

    @Test
    void gemmWithFusedRelu() throws Exception {
        INDArray x = uniform(11, 6, 12), w = uniform(12, 5, 12), b = uniform(13, 5);
        var gemm = Graphs.node("Gemm", "g", List.of("x", "w", "b"), List.of("t"), Map.of("transB", 1L));
        var relu = Graphs.node("Relu", "r", List.of("t"), List.of("y"));
        INDArray expected = OrtReference.run(List.of(gemm, relu),
                List.of(OrtReference.tensor("w", w), OrtReference.tensor("b", b)), x, true);
        assertClose(expected, GemmForward.gemm(x, w, b, true, Activation.RELU), TOL);
    }

    @Test
    void gemmRejectsMismatchedK() {
        assertThrows(IllegalArgumentException.class, () -> GemmForward.gemm(uniform(1, 2, 3), uniform(2, 4, 5), null, false));
        assertThrows(IllegalArgumentException.class, () -> GemmForward.gemm(uniform(1, 2, 3), uniform(2, 3, 5), null, true));
    }

    @Test
    void matmulRankTwo() throws Exception {
        INDArray x = uniform(1, 6, 33), w = uniform(2, 33, 10);
        assertClose(OrtReference.runNode("MatMul", Map.of(), x, Map.of("w", w)), MatMulForward.matmul(x, w), TOL);
    }

    @Test
    void matmulRankThree() throws Exception {
        INDArray x = uniform(3, 2, 5, 24), w = uniform(4, 24, 7);
        INDArray expected = OrtReference.runNode("MatMul", Map.of(), x, Map.of("w", w));
        INDArray actual = MatMulForward.matmul(x, w);
        assertArrayEquals(new long[] {2, 5, 7}, actual.shape());
        assertClose(expected, actual, TOL);
    }

    @Test
    void matmulRankFourFromAView() throws Exception {
        // a permuted (non row-major) input must flatten by its logical order
        INDArray x = uniform(5, 3, 16, 2, 4).permute(0, 2, 3, 1);
        INDArray w = uniform(6, 16, 5);
        INDArray expected = OrtReference.runNode("MatMul", Map.of(), x.dup('c'), Map.of("w", w));
        assertClose(expected, MatMulForward.matmul(x, w), TOL);
    }

    @Test
    void matmulWithBiasAndClip() throws Exception {
        INDArray x = uniform(7, 2, 3, 8), w = uniform(8, 8, 4), b = uniform(9, 4);
        var mm = Graphs.node("MatMul", "m", List.of("x", "w"), List.of("t"));
        var add = Graphs.node("Add", "a", List.of("t", "b"), List.of("u"));
        var clip = Graphs.node("Clip", "c", List.of("u", "lo", "hi"), List.of("y"));
        INDArray expected = OrtReference.run(List.of(mm, add, clip), List.of(OrtReference.tensor("w", w),
                OrtReference.tensor("b", b), Graphs.floatTensor("lo", new float[] {0f}),
                Graphs.floatTensor("hi", new float[] {0.5f})), x, true);
        assertClose(expected, MatMulForward.matmul(x, w, b, Activation.clip(0f, 0.5f)), TOL);
    }

    @Test
    void matmulRankOneInput() {
        INDArray x = Nd4j.createFromArray(1f, 2f), w = Nd4j.createFromArray(new float[][] {{1, 0, 2}, {3, 1, 0}});
        INDArray y = MatMulForward.matmul(x, w);
        assertArrayEquals(new long[] {3}, y.shape());
        assertArrayEquals(new float[] {7, 2, 2}, y.toFloatVector());
    }
}
