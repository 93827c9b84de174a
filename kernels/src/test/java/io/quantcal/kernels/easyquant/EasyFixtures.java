package io.quantcal.kernels.easyquant;

import io.quantcal.kernels.layer.Activation;
import io.quantcal.kernels.layer.LayerForward;
import io.quantcal.kernels.layer.LayerOp;
import io.quantcal.kernels.quant.QuantParams;
import java.util.Random;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Synthetic layers and their captured problems. */
final class EasyFixtures {

    private EasyFixtures() {}

    static INDArray gaussian(long seed, long... shape) {
        Random r = new Random(seed);
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
        return Nd4j.create(v, shape, 'c');
    }

    /** Laplace(0, 1) with a fraction of outliers 25× larger: minmax wastes the grid on them. */
    static INDArray heavyTailed(long seed, long... shape) {
        Random r = new Random(seed);
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            double u = r.nextDouble() - 0.5;
            double lap = -Math.signum(u) * Math.log(1 - 2 * Math.abs(u));
            if (r.nextDouble() < 0.002) lap *= 25;
            v[i] = (float) lap;
        }
        return Nd4j.create(v, shape, 'c');
    }

    static float[] floats(INDArray a) {
        return a.dup('c').data().asFloat();
    }

    static LayerOp withoutActivation(LayerOp op) {
        if (op instanceof LayerOp.Conv c) return new LayerOp.Conv(c.spec(), Activation.NONE);
        if (op instanceof LayerOp.Gemm g) return new LayerOp.Gemm(g.transB(), Activation.NONE);
        return new LayerOp.MatMul(Activation.NONE);
    }

    /** The problem with O computed by LayerForward in float, ids firstId.. in order. */
    static LayerProblem problem(LayerOp op, INDArray x, INDArray w, INDArray b, boolean afterActivation,
                                QuantParams act, QuantParams weight, long firstId) {
        INDArray o = LayerForward.forward(afterActivation ? op : withoutActivation(op), x, w, b);
        long[] ids = new long[(int) x.size(0)];
        for (int i = 0; i < ids.length; i++) ids[i] = firstId + i;
        return new LayerProblem("layer", ids, floats(x), x.shape(), floats(o), o.shape(), afterActivation, floats(w),
                w.shape(), b == null ? null : floats(b), op, act, weight);
    }

    /** Samples [from, to) of a problem as its own chunk. */
    static LayerProblem chunk(LayerProblem p, int from, int to) {
        long[] xs = p.xShape(), os = p.outputShape();
        int xin = p.x().length / (int) xs[0], oin = p.output().length / (int) os[0];
        float[] x = java.util.Arrays.copyOfRange(p.x(), from * xin, to * xin);
        float[] o = java.util.Arrays.copyOfRange(p.output(), from * oin, to * oin);
        xs[0] = to - from;
        os[0] = to - from;
        return new LayerProblem(p.layer(), java.util.Arrays.copyOfRange(p.sampleIds(), from, to), x, xs, o, os,
                p.outputAfterActivation(), p.w(), p.wShape(), p.bias(), p.op(), p.activation(), p.weight());
    }
}
