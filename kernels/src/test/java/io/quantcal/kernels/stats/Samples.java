package io.quantcal.kernels.stats;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.util.SplittableRandom;

/** Seeded samples of known distributions, and a Java-serialization round trip (what Spark does to results). */
final class Samples {

    private Samples() {}

    static float[] gaussian(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    /** Laplace(0, b) by inverting its CDF: x = −b·sign(u)·ln(1 − 2|u|), u ~ U(−½, ½). */
    static float[] laplace(int n, double b, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            double u = r.nextDouble() - 0.5;
            x[i] = (float) (-b * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
        }
        return x;
    }

    static float[] uniform(int n, double lo, double hi, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(lo, hi);
        return x;
    }

    @SuppressWarnings("unchecked")
    static <T extends Serializable> T roundTrip(T value) throws IOException, ClassNotFoundException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(value);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return (T) in.readObject();
        }
    }
}
