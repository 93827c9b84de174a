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
 * {@link #decoded} counts the decodings, so a run can show it; {@link #read} counts the samples the passes' tasks
 * read from the decoded set, so a run shows how many passes over the data it made (reads / samples).
 */
public final class CalibrationSamples {

    private final SparkSession spark;
    private final QuantcalConfig cfg;
    private final LongAccumulator decoded;
    private final LongAccumulator read;
    private JavaRDD<Sample> samples;
    private JavaRDD<Sample> counted;
    private ModelInputs inputs;

    public CalibrationSamples(SparkSession spark, QuantcalConfig cfg) {
        this.spark = spark;
        this.cfg = cfg;
        this.decoded = spark.sparkContext().longAccumulator("quantcal calibration samples decoded");
        this.read = spark.sparkContext().longAccumulator("quantcal calibration samples read");
    }

    /**
     * The calibration samples as {@code modelInputs} take them, decoded on first use. The passes of a run bind the
     * same inputs (folding and equalizing change weights, not inputs); other inputs decode the set again.
     */
    public synchronized JavaRDD<Sample> get(ModelInputs modelInputs) {
        if (samples != null && modelInputs.equals(inputs)) return counted;
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
        LongAccumulator reads = read;
        counted = samples.map(s -> {
            reads.add(1);
            return s;
        });
        return counted;
    }

    /** How many samples were decoded so far (each sample once per run, unless the inputs changed or a task was retried). */
    public long decoded() {
        return decoded.value();
    }

    /**
     * How many samples the passes' tasks read from the decoded set so far: the number of samples times the passes over
     * the data (a retried task counts again; a pass that reads a subset, e.g. the first N by id, still scans the set).
     */
    public long read() {
        return read.value();
    }

    /** Drops the persisted samples (the end of the run). */
    public synchronized void release() {
        if (samples != null) samples.unpersist(false);
        samples = null;
        counted = null;
        inputs = null;
    }
}
