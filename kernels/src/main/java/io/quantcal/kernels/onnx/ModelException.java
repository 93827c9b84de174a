package io.quantcal.kernels.onnx;

/**
 * A model that quantcal cannot read, rewrite or run as asked. The message names the model file and,
 * where there is one, the node and tensor at fault and what was expected, so that a failed Spark job
 * says what to fix without a debugger.
 */
public class ModelException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ModelException(String message) {
        super(message);
    }

    public ModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
