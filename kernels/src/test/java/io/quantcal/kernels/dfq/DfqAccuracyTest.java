package io.quantcal.kernels.dfq;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.onnx.OnnxModel;
import org.junit.jupiter.api.Test;

/**
 * The acceptance check on the fixture whose depthwise channels were rescaled (FP function
 * unchanged): per-tensor 8-bit symmetric weight fake quantization collapses it; equalization restores it.
 * 200 calibration images (20 per class).
 */
class DfqAccuracyTest {

    @Test
    void equalizationRestoresPerTensorInt8Accuracy() {
        DfqFixtures.Images images = DfqFixtures.calibration(20);
        OnnxModel m = DfqFixtures.model("mobilenet_small_unbalanced.onnx");
        double fp = DfqFixtures.accuracy(m, images);
        double q = DfqFixtures.accuracy(DfqFixtures.fakeQuantWeights(m, 8), images);

        OnnxModel reluOnly = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults().withTreatRelu6AsRelu(false)).model();
        double qReluOnly = DfqFixtures.accuracy(DfqFixtures.fakeQuantWeights(reluOnly, 8), images);

        Equalized paper = CrossLayerEqualizer.equalize(m, EqualizationOptions.defaults());
        double fpPaper = DfqFixtures.accuracy(paper.model(), images);
        double qPaper = DfqFixtures.accuracy(DfqFixtures.fakeQuantWeights(paper.model(), 8), images);

        System.out.printf("DFQ accuracy on %d calibration images: FP %.1f%%, int8 per-tensor weights %.1f%%;"
                        + " equalized ReLU pairs only: int8 %.1f%%; equalized with ReLU6 as ReLU (%d sweeps):"
                        + " FP %.1f%%, int8 %.1f%%%n", images.count(), 100 * fp, 100 * q, 100 * qReluOnly,
                paper.result().iterations(), 100 * fpPaper, 100 * qPaper);
        assertTrue(q < fp - 0.3, "per-tensor int8 should collapse the unbalanced model: " + q + " vs FP " + fp);
        assertTrue(qReluOnly >= fp - 0.02, "ReLU-pair equalization: int8 " + qReluOnly + " vs FP " + fp);
        assertTrue(qPaper >= fp - 0.02, "paper equalization: int8 " + qPaper + " vs FP " + fp);
    }
}
