package io.quantcal.kernels.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quantcal.kernels.quant.AffineQuantizer;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.QuantParams;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** TensorStats, ChannelMinMax and Range, and that every stats value survives Java serialization. */
class TensorStatsTest {

    @Test
    void mergedPartialStatisticsEqualThoseOfTheWholeTensor() {
        float[] x = Samples.gaussian(20_000, 9);
        HistogramSpec spec = HistogramSpec.symmetric(MinMaxStats.of(x), 512);
        TensorStats whole = TensorStats.of("act", x, spec);
        TensorStats a = TensorStats.of("act", Arrays.copyOfRange(x, 0, 7000), spec);
        TensorStats b = TensorStats.of("act", Arrays.copyOfRange(x, 7000, 20_000), spec);
        TensorStats ab = a.merge(b), ba = b.merge(a);
        assertEquals(whole.histogram(), ab.histogram());
        assertEquals(ab, ba);
        assertEquals(whole.minMax().count(), ab.minMax().count());
        assertEquals(whole.minMax().min(), ab.minMax().min());
        assertEquals(whole.minMax().max(), ab.minMax().max());
        assertEquals(20_000, ab.histogram().total());
    }

    @Test
    void withoutHistogram() {
        TensorStats s = TensorStats.of("w", new float[] {1, -3});
        assertFalse(s.hasHistogram());
        assertNull(s.histogram());
        assertEquals(s, TensorStats.of("w", new float[] {1, -3}, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.requireHistogram("entropy"));
        assertTrue(e.getMessage().contains("tensor w") && e.getMessage().contains("entropy"), e.getMessage());
        assertFalse(s.merge(TensorStats.of("w", new float[] {2})).hasHistogram());
    }

    @Test
    void mergesOfDifferentTensorsOrKindsAreRefused() {
        HistogramSpec spec = new HistogramSpec(-1, 1, 4);
        TensorStats a = TensorStats.of("a", new float[] {0.5f}, spec);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> a.merge(TensorStats.of("b", new float[] {0.5f}, spec)));
        assertTrue(e.getMessage().contains("a") && e.getMessage().contains("b"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> a.merge(TensorStats.of("a", new float[] {0.5f})));
        assertTrue(e.getMessage().contains("tensor a"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TensorStats(null, MinMaxStats.empty(), null));
    }

    @Test
    void channelMinMaxAlongEachAxisByHand() {
        // [2, 3] = {{1, -2, 3}, {-4, 5, 0.5}}
        float[] w = {1, -2, 3, -4, 5, 0.5f};
        ChannelMinMax rows = ChannelMinMax.of(w, new long[] {2, 3}, 0);
        assertEquals(0, rows.axis());
        assertEquals(2, rows.channels());
        assertEquals(Arrays.toString(new double[] {-2, -4}), Arrays.toString(rows.min()));
        assertEquals(Arrays.toString(new double[] {3, 5}), Arrays.toString(rows.max()));
        ChannelMinMax cols = ChannelMinMax.of(w, new long[] {2, 3}, 1);
        assertEquals(Arrays.toString(new double[] {-4, -2, 0.5}), Arrays.toString(cols.min()));
        assertEquals(Arrays.toString(new double[] {1, 5, 3}), Arrays.toString(cols.max()));
        assertEquals(Arrays.toString(new double[] {4, 5, 3}), Arrays.toString(cols.absMax()));

        // conv weight [out 2, in 2, 1, 2]: channel 0 is the first 4 values, channel 1 the last 4
        float[] conv = {0.1f, -0.2f, 0.3f, 0.05f, -7, 1, 2, 3};
        ChannelMinMax out = ChannelMinMax.of("conv.weight", conv, new long[] {2, 2, 1, 2}, 0);
        assertEquals(Arrays.toString(new double[] {-0.2f, -7}), Arrays.toString(out.min()));
        assertEquals(Arrays.toString(new double[] {0.3f, 3}), Arrays.toString(out.max()));
        // axis 3 of the same weight: even and odd positions
        ChannelMinMax last = ChannelMinMax.of(conv, new long[] {2, 2, 1, 2}, 3);
        assertEquals(Arrays.toString(new double[] {-7, -0.2f}), Arrays.toString(last.min()));
        assertEquals(Arrays.toString(new double[] {2, 3}), Arrays.toString(last.max()));
    }

    @Test
    void channelMinMaxBecomesPerChannelParameters() {
        ChannelMinMax m = new ChannelMinMax(1, new double[] {-1, -0.5, 0}, new double[] {2, 0.25, 0});
        QuantParams sym = m.toParams(SymmetricQuantizer.grid(8, true), true);
        assertEquals(SymmetricQuantizer.fromClips(8, true, 1, new double[] {2, 0.5, 0}), sym);
        QuantParams aff = m.toParams(QuantGrid.of(8, false), false);
        assertEquals(AffineQuantizer.fromRanges(QuantGrid.of(8, false), 1, new double[] {-1, -0.5, 0}, new double[] {2, 0.25, 0}), aff);
    }

    @Test
    void channelMinMaxRefusesBadInputNamingTheTensor() {
        float[] w = new float[6];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChannelMinMax.of("fc.weight", w, new long[] {2, 3}, 2));
        assertTrue(e.getMessage().contains("fc.weight") && e.getMessage().contains("axis 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ChannelMinMax.of("fc.weight", w, new long[] {2, 4}, 0));
        assertTrue(e.getMessage().contains("fc.weight") && e.getMessage().contains("8"), e.getMessage());
        w[4] = Float.NaN;
        e = assertThrows(IllegalArgumentException.class, () -> ChannelMinMax.of("fc.weight", w, new long[] {2, 3}, 0));
        assertTrue(e.getMessage().contains("fc.weight") && e.getMessage().contains("NaN"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ChannelMinMax.of(new float[0], new long[] {0, 3}, 0));
    }

    @Test
    void rangeBecomesTheParametersDeploymentUses() {
        Range r = new Range(-0.5, 2);
        assertEquals(2.0, r.clip());
        assertEquals(AffineQuantizer.fromRange(QuantGrid.of(8, false), -0.5, 2), r.toParams(QuantGrid.of(8, false), false));
        assertEquals(SymmetricQuantizer.fromClip(8, true, 2), r.toParams(SymmetricQuantizer.grid(8, true), true));
        assertEquals(SymmetricQuantizer.fromClip(4, false, 2), r.toParams(SymmetricQuantizer.grid(4, false), true));
        assertEquals(1.0, new Range(0, 0).toParams(SymmetricQuantizer.grid(8, true), true).scale(0));
        assertThrows(IllegalArgumentException.class, () -> new Range(1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Range(Double.NaN, 0));
    }

    @Test
    void everyStatsValueSurvivesJavaSerialization() throws Exception {
        float[] x = Samples.gaussian(1000, 10);
        TensorStats withHist = TensorStats.of("t", x, HistogramSpec.symmetric(MinMaxStats.of(x), 64));
        TensorStats without = TensorStats.of("t", x);
        assertEquals(withHist, Samples.roundTrip(withHist));
        assertEquals(without, Samples.roundTrip(without));
        assertEquals(withHist.histogram(), Samples.roundTrip(withHist.histogram()));
        assertEquals(MinMaxStats.empty(), Samples.roundTrip(MinMaxStats.empty()));
        ChannelMinMax c = ChannelMinMax.of(x, new long[] {10, 100}, 0);
        assertEquals(c, Samples.roundTrip(c));
        assertEquals(new Range(-1, 2), Samples.roundTrip(new Range(-1, 2)));
        for (String name : Calibrators.NAMES) {
            Calibrator cal = Calibrators.byName(name, 99.9);
            assertEquals(cal, Samples.roundTrip(cal));
        }
    }
}
