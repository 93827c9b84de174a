package io.quantcal.job.data;

/** A sample that cannot be used (broken image, wrong size, NaN/inf): names the file or row. */
public final class BadSampleException extends RuntimeException {
    public BadSampleException(String message) {
        super(message);
    }
}
