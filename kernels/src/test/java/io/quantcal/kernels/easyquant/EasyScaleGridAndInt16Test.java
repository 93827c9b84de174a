package io.quantcal.kernels.easyquant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quantcal.kernels.calib.LayerCalibration;
import io.quantcal.kernels.quant.QuantGrid;
import io.quantcal.kernels.quant.SymmetricQuantizer;
import org.junit.jupiter.api.Test;

class EasyScaleGridAndInt16Test {

    @Test
    void defaultGridHas101CandidatesFromHalfToTwiceTheScaleEndsIncluded() {
        ScaleGrid g = ScaleGrid.of(0.1);
        double[] c = g.candidates();
        assertEquals(101, c.length);
        assertEquals((float) 0.05, c[0], 0.0);
        assertEquals((float) 0.2, c[100], 0.0);
        // step (β − α)·S / n = 1.5·0.1/100 = 0.0015
        assertEquals((float) (0.1 * (0.5 + 0.015)), c[1], 0.0);
        assertEquals((float) (0.1 * (0.5 + 50 * 0.015)), c[50], 0.0);
        for (int k = 1; k < c.length; k++) assertEquals(0.0015, c[k] - c[k - 1], 3e-8); // float32 rounding of both ends
        for (double v : c) assertEquals((float) v, v, 0.0); // float32 values
        // 1.0 = 0.5 + k·0.015 at k = 33.33: nearest is k = 33 (0.995·S)
        assertEquals(33, g.nearestToInitial());
    }

    @Test
    void customGridCountsSegmentsNotPoints() {
        ScaleGrid g = new ScaleGrid(2.0, 0.5, 1.5, 4);
        assertEquals(5, g.size());
        assertEquals(1.0, g.candidate(0), 0.0);
        assertEquals(1.5, g.candidate(1), 0.0);
        assertEquals(2.0, g.candidate(2), 0.0);
        assertEquals(3.0, g.candidate(4), 0.0);
        assertEquals(2, g.nearestToInitial());
        assertThrows(IllegalArgumentException.class, () -> new ScaleGrid(1, 2, 1, 10));
        assertThrows(IllegalArgumentException.class, () -> new ScaleGrid(1, 0.5, 2, 0));
        assertThrows(IllegalArgumentException.class, () -> new ScaleGrid(0, 0.5, 2, 10));
    }

    @Test
    void int16AccumulationHandWorked() {
        QuantGrid int8Narrow = SymmetricQuantizer.grid(8, true);      // [−127, 127]
        QuantGrid uint8 = QuantGrid.of(8, false);                      // [0, 255]
        QuantGrid int7Narrow = SymmetricQuantizer.grid(7, true);      // [−63, 63]
        QuantGrid int8Full = LayerCalibration.weightGrid(8, false);   // [−128, 127]
        QuantGrid uint7 = QuantGrid.of(7, false);                      // [0, 127]
        assertEquals(1, Int16Accumulation.maxProducts(int8Narrow, uint8));   // 127·255 = 32385
        assertEquals(8, Int16Accumulation.maxProducts(int7Narrow, int7Narrow)); // 63·63 = 3969, 32767/3969 = 8.26
        assertEquals(2, Int16Accumulation.maxProducts(int8Narrow, int8Narrow)); // 127·127 = 16129 → 2.03
        assertEquals(1, Int16Accumulation.maxProducts(int8Full, int8Full));     // 128·128 = 16384 → 1.99994
        assertEquals(4, Int16Accumulation.maxProducts(int7Narrow, uint7));   // 63·127 = 8001 → 4.09
        assertEquals(0, Int16Accumulation.maxProducts(QuantGrid.of(8, false), uint8)); // 255·255 = 65025 > 32767
        assertEquals(145, Int16Accumulation.maxProducts(SymmetricQuantizer.grid(5, true), SymmetricQuantizer.grid(5, true))); // 15·15 = 225 → 145.6

        // a 3x3 conv over 64 input channels at W7A7: 576 products per output, 8 per int16 partial → 72 partials
        Int16Accumulation.Report r = Int16Accumulation.report(SymmetricQuantizer.fromClip(7, true, 1.0),
                SymmetricQuantizer.fromClip(7, true, 1.0), 64 * 9);
        assertEquals(new Int16Accumulation.Report(3969, 8, 576, 72), r);
    }
}
