package io.quantcal.kernels.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.onnx.OnnxModel;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * ONNX Runtime sessions of models larger than one protobuf message ({@link OnnxModel#large}), and of any model with
 * more than 1/16 of that in tensor data (whose bytes for {@code createSession} would be a transient heap copy of its
 * weights per session): the model is written to
 * a private directory under {@code java.io.tmpdir} as an ONNX file with its external data (each tensor at a 4 KiB
 * boundary), the session is created from that path, and the files are deleted once it has loaded. ONNX Runtime
 * memory-maps such data, so a session holds its own packed copy of the weights and no other (measured on a 2.2 GiB
 * model: 2.26 GiB of anonymous memory per session from the file, 0.06 GiB without weight pre-packing); loading the
 * model from bytes with external initializers would need a direct buffer of the weights besides.
 */
final class LargeModelFiles {

    private LargeModelFiles() {}

    static OrtSession session(OrtEnvironment env, OnnxModel model, OrtSession.SessionOptions options) throws OrtException {
        Path dir;
        try {
            dir = Files.createTempDirectory("quantcal-large-model-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a directory under " + System.getProperty("java.io.tmpdir")
                    + " for the model " + model.source() + " (" + e.getMessage() + ")", e);
        }
        Path file = dir.resolve("model.onnx");
        Path data = dir.resolve("model.onnx.data");
        try {
            OnnxModel.WithExternalData w = model.withExternalDataAlways(data.getFileName().toString());
            try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(data), 1 << 20)) {
                w.writeData(out);
            }
            Files.write(file, w.model());
            return env.createSession(file.toString(), options);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the model " + model.source() + " to " + dir
                    + " for ONNX Runtime (" + e.getMessage() + "; " + dataGiB(model) + " of disk space are needed)", e);
        } finally {
            // a mapping outlives its file on Linux; elsewhere the files go when the JVM ends
            for (Path p : new Path[] {file, data, dir}) {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    p.toFile().deleteOnExit();
                }
            }
        }
    }

    private static String dataGiB(OnnxModel m) {
        return String.format(java.util.Locale.ROOT, "%.2f GiB", m.dataBytes() / (double) (1L << 30));
    }
}
