package io.quantcal.job.data;

import io.quantcal.kernels.runtime.SampleInputs;
import java.io.Serializable;

/**
 * One preprocessed sample: its id (position in the chosen sample set, the merge key), where it came from
 * (file path or Parquet row), its label (−1 when unknown) and its values for every model input, each row-major in
 * the input's shape and of the input's element type (an image: one float array). A sample that could not be read
 * carries {@code error} instead of values.
 */
public record Sample(long id, String source, int label, SampleInputs inputs, String error) implements Serializable {

    public static Sample bad(long id, String source, int label, String error) {
        return new Sample(id, source, label, null, error);
    }

    public boolean ok() {
        return error == null;
    }
}
