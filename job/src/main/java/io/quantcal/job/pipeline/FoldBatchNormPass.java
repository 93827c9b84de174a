package io.quantcal.job.pipeline;

import io.quantcal.kernels.onnx.AffineFolder;
import io.quantcal.kernels.onnx.BatchNormFolder;
import io.quantcal.kernels.onnx.BatchNormFolding;
import io.quantcal.kernels.onnx.ConvTransposeAsDepthToSpace;
import io.quantcal.kernels.onnx.FoldedBatchNorm;
import io.quantcal.kernels.dfq.PreActivation;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code fold-bn}: folds BatchNormalization into the preceding Conv (driver side, no data). With per-channel
 * weights, a BN that no Conv absorbs becomes a depthwise 1×1 Conv ({@link BatchNormFolder}), exact on the
 * per-channel grid and run on integers by the export's consumers; with per-tensor weights it stays a float BN,
 * since one scale for all its channels' factors would lose the small ones.
 */
public final class FoldBatchNormPass implements Pass {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FoldBatchNormPass.class);

    @Override
    public String name() {
        return "fold-bn";
    }

    @Override
    public PipelineState run(RunContext ctx, PipelineState state) {
        boolean perChannel = ctx.config().weights().perChannel();
        // a constant shift or scale between a Conv and its BN (PP-OCR det's ConvTranspose → Add → BN) first, so that
        // the BN then folds into the Conv too instead of becoming a Conv of its own
        AffineFolder.Result first = AffineFolder.fold(state.model());
        BatchNormFolding f = BatchNormFolder.fold(first.model(), perChannel);
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("folded", f.folded().size());
        s.put("batch_norms", f.folded().stream().map(b -> b.batchNorm() + " -> " + b.conv()).toList());
        s.put("as_depthwise_conv", f.asConv().stream().map(FoldedBatchNorm::batchNorm).toList());
        Map<String, String> kept = new LinkedHashMap<>();
        for (var e : f.kept().entrySet()) {
            kept.put(e.getKey(), perChannel ? e.getValue() : e.getValue() + "; per-tensor weights keep it in float");
        }
        s.put("kept", kept);
        if (!f.asConv().isEmpty()) {
            LOG.info("fold-bn: {}", f.asConv().size() + " BatchNormalization without a Conv before them run as depthwise"
                    + " 1x1 Convs (quantized like any Conv)");
        }
        if (!kept.isEmpty()) {
            LOG.info("fold-bn: {}", kept.size() + " BatchNormalization left in float: " + summary(kept));
        }
        Map<String, PreActivation> pre = new LinkedHashMap<>();
        List<FoldedBatchNorm> all = new ArrayList<>(f.folded());
        all.addAll(f.asConv());
        for (var b : all) pre.put(b.conv(), PreActivation.of(b));
        // Mul/Add by constants after a (BN-folded) Conv: a BN written out, folded the same way
        AffineFolder.Result affine = AffineFolder.fold(f.model());
        List<String> affineFolds = new ArrayList<>();
        for (AffineFolder.Fold a : first.folds()) affineFolds.add(a.conv() + " <- " + a.ops());
        for (AffineFolder.Fold a : affine.folds()) {
            affineFolds.add(a.conv() + " <- " + a.ops());
            PreActivation p = pre.get(a.conv());
            if (p != null) pre.put(a.conv(), p.affine(a.scale(), a.shift()));
        }
        s.put("affine", affineFolds);
        if (!affineFolds.isEmpty()) {
            LOG.info("fold-bn: {}", affineFolds.size() + " Convs absorbed the Mul/Add by constants after them");
        }
        // a ConvTranspose whose kernel is its stride: the 1×1 Conv + DepthToSpace it computes (integer on ONNX Runtime)
        ConvTransposeAsDepthToSpace.Result ct = ConvTransposeAsDepthToSpace.rewrite(affine.model());
        List<String> cts = new ArrayList<>();
        for (ConvTransposeAsDepthToSpace.Rewrite r : ct.rewritten()) {
            cts.add(r.node());
            PreActivation p = pre.get(r.node());
            if (p != null) pre.put(r.node(), blocks(p, r.block()));
        }
        s.put("conv_transpose_as_conv", cts);
        if (!cts.isEmpty()) {
            LOG.info("fold-bn: {}", cts.size() + " ConvTranspose with kernel = stride written as 1x1 Conv + DepthToSpace");
        }
        return state.withModel(ct.model(), all).withPreActivations(pre).withSummary(name(), s);
    }

    /** A ConvTranspose's per-channel pre-activation for its Conv's s²·C channels: channel (a·s + b)·C + c is c's. */
    private static PreActivation blocks(PreActivation p, int s) {
        int c = p.channels();
        float[] beta = p.beta(), gamma = p.gamma();
        float[] b2 = new float[c * s * s], g2 = new float[c * s * s];
        for (int k = 0; k < s * s; k++) {
            System.arraycopy(beta, 0, b2, k * c, c);
            System.arraycopy(gamma, 0, g2, k * c, c);
        }
        return new PreActivation(b2, g2);
    }

    private static String summary(Map<String, String> kept) {
        var e = kept.entrySet().iterator().next();
        return e.getKey() + " (" + e.getValue() + ")" + (kept.size() > 1 ? " and " + (kept.size() - 1) + " more (run.json)" : "");
    }
}
