package io.quantcal.kernels.layer;

import io.quantcal.kernels.quant.FakeQuant;
import io.quantcal.kernels.quant.QuantParams;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One quantizable layer's forward pass, in floating point or with fake-quantized input and weight: the
 * function EasyQuant and AdaRound evaluate over and over. x̂ = FakeQuant(x, xq), ŵ = FakeQuant(w, wq),
 * y = act(layer(x̂, ŵ) + b).
 *
 * <p>The bias stays float: deployed, it is int32 with scale s_x·s_w (per output channel), so its
 * rounding error is at most s_x·s_w/2, negligible beside the int8 errors of x and w; the QDQ exporter
 * writes that int32 bias. A search that keeps one side fixed (EasyQuant alternating S_w and S_a) can
 * fake-quantize that side once and pass it with a null {@code QuantParams}.
 */
public final class LayerForward {

    private LayerForward() {}

    /** The floating-point forward pass (b nullable). */
    public static INDArray forward(LayerOp op, INDArray x, INDArray w, INDArray b) {
        return op.forward(x, w, b);
    }

    /**
     * The forward pass on x̂ = FakeQuant(x, xq) and ŵ = FakeQuant(w, wq); a null parameter leaves that
     * tensor in floating point. Per-channel weight parameters carry their axis: 0 for Conv and for Gemm
     * with transB, 1 for MatMul and Gemm without.
     */
    public static INDArray forward(LayerOp op, INDArray x, INDArray w, INDArray b, QuantParams xq, QuantParams wq) {
        INDArray xh = xq == null ? x : FakeQuant.apply(x, xq);
        INDArray wh = wq == null ? w : FakeQuant.apply(w, wq);
        return forward(op, xh, wh, b);
    }
}
