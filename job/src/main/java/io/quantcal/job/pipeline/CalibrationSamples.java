package io.quantcal.job.pipeline;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.data.Sample;
import io.quantcal.job.data.SampleSets;
import io.quantcal.kernels.runtime.ModelInputs;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;

/**
 * A run's calibration samples, decoded once and shared by every pass that reads them (calibrate, easyquant,
 * adaround, learn, stochastic rounding, bias-correct): persisted (memory, spilling to disk) on first use and
 * released when the run ends. The passes take the first N by id or re-spread them as before, so what they see
 * does not change; only the decoding (image reads and preprocessing, Parquet conversion) happens once.
 * {@link #decoded} counts the decodings, so a run can show it.
 */
public final class CalibrationSamples {

    private final SparkSession spark;
    private final QuantcalConfig cfg;
    private final LongAccumulator decoded;
    private JavaRDD<Sample> samples;
    private ModelInputs inputs;

    public CalibrationSamples(SparkSession spark, QuantcalConfig cfg) {
        this.spark = spark;
        this.cfg = cfg;
        this.decoded = spark.sparkContext().longAccumulator("quantcal calibration samples decoded");
    }

    /**
     * The calibration samples as {@code modelInputs} take them, decoded on first use. The passes of a run bind the
     * same inputs (folding and equalizing change weights, not inputs); other inputs decode the set again.
     */
    public synchronized JavaRDD<Sample> get(ModelInputs modelInputs) {
        if (samples != null && modelInputs.equals(inputs)) return samples;
        release();
        LongAccumulator count = decoded;
        samples = SampleSets.load(spark, cfg, cfg.calibration(), modelInputs, SampleSets.partitions(spark, cfg.calibration()))
                .map(s -> {
                    count.add(1);
                    return s;
                })
                .setName("quantcal calibration samples")
                .persist(StorageLevel.MEMORY_AND_DISK());
        inputs = modelInputs;
        return samples;
    }

    /** How many samples were decoded so far (each sample once per run, unless the inputs changed or a task was retried). */
    public long decoded() {
        return decoded.value();
    }

    /** Drops the persisted samples (the end of the run). */
    public synchronized void release() {
        if (samples != null) samples.unpersist(false);
        samples = null;
        inputs = null;
    }
}
