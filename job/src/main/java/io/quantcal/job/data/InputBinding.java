package io.quantcal.job.data;

import io.quantcal.job.config.QuantcalConfig;
import io.quantcal.job.config.QuantcalConfig.Inputs;
import io.quantcal.job.config.QuantcalConfig.Samples;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import io.quantcal.kernels.onnx.TensorInfo;
import io.quantcal.kernels.runtime.ElementType;
import io.quantcal.kernels.runtime.ModelInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Which model inputs a sample set feeds, with what element type and shape, and (Parquet) from which column.
 *
 * <p>The first dimension of every input is the batch. The other dimensions come from the model where it fixes them,
 * from {@code quantcal.input-shapes} where the user declares them, and, for a single float input of rank 4 (an image
 * model), from {@code quantcal.calibration.preprocess} as before. The {@code images} format feeds exactly one float
 * input. Everything here is checked on the driver before any work ({@link #check}), each error naming the input,
 * the config key and both shapes or types.
 */
public final class InputBinding {

    private InputBinding() {}

    /** A Parquet column feeding a model input, and the config key (or rule) that chose it, for messages. */
    public record Column(String name, String key) implements Serializable {}

    /** Everything the run's data feed, checked before any work: the calibration and, with evaluate, evaluation data. */
    public static void check(OnnxModel model, QuantcalConfig cfg) {
        List<String> names = model.inputs().stream().map(TensorInfo::name).toList();
        Map<String, java.util.Set<String>> named = new LinkedHashMap<>();
        named.put(Inputs.COLUMNS_KEY, cfg.inputs().parquetColumns().keySet());
        named.put(Inputs.SHAPES_KEY, cfg.inputs().shapes().keySet());
        named.put(Inputs.BATCH_AXES_KEY, cfg.inputs().batchAxes().keySet());
        for (Map.Entry<String, java.util.Set<String>> e : named.entrySet()) {
            for (String n : e.getValue()) {
                if (names.contains(n)) continue;
                throw new ModelException(e.getKey() + " names '" + n + "', which is not an input of the model "
                        + cfg.model() + "; its inputs: " + names + (cfg.inputs().values().containsKey(n)
                                ? " (" + n + " is fixed by " + Inputs.VALUES_KEY + ": the data feed it no more)" : ""));
            }
        }
        // every pass that reads the calibration data comes after calibrate (QuantcalConfig's order rules)
        if (cfg.pipeline().contains("calibrate")) of(model, cfg, cfg.calibration());
        if (cfg.pipeline().contains("evaluate")) of(model, cfg, cfg.evaluation());
    }

    /** The inputs every sample of {@code s} feeds, in the model's order. */
    public static ModelInputs of(OnnxModel model, QuantcalConfig cfg, Samples s) {
        List<TensorInfo> ins = model.inputs();
        if (ins.isEmpty()) throw new ModelException("model " + cfg.model() + " has no graph input to feed");
        boolean images = s.format().equals("images");
        if (images && ins.size() != 1) {
            throw new ModelException("model " + cfg.model() + " has " + ins.size() + " inputs "
                    + ins.stream().map(TensorInfo::name).toList() + "; the images format feeds exactly one image input:"
                    + " give the data as Parquet (format = parquet), one column per input (" + Inputs.COLUMNS_KEY + ")");
        }
        boolean imageLike = ins.size() == 1 && (ins.get(0).elementType() == ElementType.FLOAT.onnx()
                        || ins.get(0).elementType() == ElementType.UINT8.onnx())
                && (ins.get(0).shape() == null || ins.get(0).shape().length == 4);
        List<ModelInputs.Input> out = new ArrayList<>();
        boolean fixedOne = false;
        for (TensorInfo in : ins) {
            ElementType type = ElementType.ofOnnx(in.elementType());
            if (type == null) {
                String t = ElementType.onnxName(in.elementType());
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " is "
                        + (t.startsWith("int") ? "an " : "a ") + t + " tensor; quantcal feeds float32, float64, int64,"
                        + " int32 and uint8 inputs");
            }
            if (images && type != ElementType.FLOAT && type != ElementType.UINT8) {
                String weight = type == ElementType.DOUBLE ? model.float64Weight() : null;
                if (weight != null) {
                    // a model that computes in float64: Parquet would feed it, and the weights would stop it after
                    throw new ModelException("model input " + in.name() + " of " + cfg.model() + " is a float64 tensor,"
                            + " and so are its weights (" + weight + "): " + OnnxModel.FLOAT32_ONLY);
                }
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " is a " + type
                        + " tensor; the images format feeds a float32 image (or a uint8 one, the 8-bit pixels): give the"
                        + " data as Parquet (format = parquet)");
            }
            boolean open = in.shape() == null;
            for (int d = 1; !open && d < in.shape().length; d++) open = in.shape()[d] <= 0;
            // Parquet image tensors: the preprocessing fills only dimensions the model leaves open
            boolean fromPreprocess = images || (imageLike && open && !cfg.inputs().shapes().containsKey(in.name()));
            long[] unbatched = fromPreprocess ? unbatchedImage(in, cfg) : null;
            if (unbatched != null) {
                // one image [C, H, W] without a batch dimension (torchvision's detection models batch inside)
                fixedOne = true;
                out.add(new ModelInputs.Input(in.name(), type, unbatched, -1));
                continue;
            }
            if (!images && in.shape() != null && in.shape().length == 0) {
                // a scalar (Silero VAD's sample rate, a TTS model's speed): one value per sample, one sample per run
                fixedOne = true;
                out.add(new ModelInputs.Input(in.name(), type, new long[0], -1));
                continue;
            }
            Integer axis = cfg.inputs().batchAxes().get(in.name());
            if (axis != null && axis != 0) {
                // a sequence-first input [T, N, F]: one sample [T, F] per run, its batch of 1 at the axis
                fixedOne = true;
                out.add(new ModelInputs.Input(in.name(), type, batchAt(in, cfg, axis), axis));
                continue;
            }
            long[] shape = shape(in, cfg, images, fromPreprocess);
            fixedOne |= shape[0] == 1;
            out.add(new ModelInputs.Input(in.name(), type, Arrays.copyOfRange(shape, 1, shape.length)));
        }
        return new ModelInputs(out, fixedOne ? 1 : 0);
    }

    /**
     * One sample's shape of an input whose batch is at {@code axis} (quantcal.input-batch-axes): the model's shape, or
     * the declared one in the model's order, without that axis; the model's dimension there must be open or 1.
     */
    private static long[] batchAt(TensorInfo in, QuantcalConfig cfg, int axis) {
        String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-batch-axes", in.name());
        String shapesKey = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-shapes", in.name());
        long[] model = in.shape();
        List<Long> declared = cfg.inputs().shapes().get(in.name());
        long[] want = declared != null ? declared.stream().mapToLong(Long::longValue).toArray() : model;
        if (want == null) {
            throw new ModelException("model input " + in.name() + " of " + cfg.model() + " declares no shape: set "
                    + shapesKey + " (its full shape in the model's order, -1 at the batch axis " + axis + ")");
        }
        if (axis >= want.length || model != null && model.length != want.length) {
            throw new ModelException(key + " = " + axis + ": model input " + in.name() + " of " + cfg.model() + " has shape "
                    + Arrays.toString(model == null ? want : model) + " (rank " + (model == null ? want : model).length
                    + ")" + (declared != null && model != null && model.length != want.length ? ", " + shapesKey
                    + " gives rank " + want.length : ", no axis " + axis));
        }
        if (model != null && model[axis] > 1) {
            throw new ModelException(key + " = " + axis + ": model input " + in.name() + " of " + cfg.model() + " has shape "
                    + Arrays.toString(model) + ", whose dimension " + axis + " is fixed to " + model[axis]
                    + ": a batch axis must be open (or 1)");
        }
        long[] sample = new long[want.length - 1];
        for (int d = 0, k = 0; d < want.length; d++) {
            if (d == axis) continue;
            long m = model == null ? -1 : model[d];
            long w = want[d] > 0 ? want[d] : m;
            if (m > 0 && w != m) {
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has shape " + Arrays.toString(model)
                        + ", " + shapesKey + " = " + declared + ": dimension " + d + " differs (" + m + " against " + w + ")");
            }
            if (w <= 0) {
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has shape "
                        + Arrays.toString(model) + ": dimension " + d + " is not fixed by the model; declare it: " + shapesKey
                        + " = [...] (in the model's order, -1 at the batch axis " + axis + ")");
            }
            sample[k++] = w;
        }
        return sample;
    }

    /**
     * The shape of an image input without a batch dimension, one rank below the preprocessing's ([C, H, W] for NCHW,
     * [H, W, C] for NHWC), whose every dimension the model fixes to the preprocessing's value or leaves open; or null.
     */
    private static long[] unbatchedImage(TensorInfo in, QuantcalConfig cfg) {
        long[] model = in.shape();
        long[] image = cfg.preprocess().shape(1);
        if (model == null || model.length != image.length - 1) return null;
        long[] sample = Arrays.copyOfRange(image, 1, image.length);
        for (int d = 0; d < model.length; d++) if (model[d] > 0 && model[d] != sample[d]) return null;
        return sample;
    }

    /**
     * The input's full shape, batch first (-1: dynamic batch): the model's, with the dimensions it leaves open taken
     * from {@code quantcal.input-shapes}, or for an image input from the preprocessing (always for the images format).
     */
    private static long[] shape(TensorInfo in, QuantcalConfig cfg, boolean images, boolean fromPreprocess) {
        long[] model = in.shape();
        String shown = model == null ? "no shape" : "shape " + Arrays.toString(model);
        // images are what the preprocessing makes of them, whatever input-shapes says for Parquet data
        List<Long> declared = images ? null : cfg.inputs().shapes().get(in.name());
        String key = com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-shapes", in.name());
        long[] want;
        String from;
        if (declared != null) {
            want = declared.stream().mapToLong(Long::longValue).toArray();
            from = key + " = " + Arrays.toString(want);
        } else if (fromPreprocess) {
            want = cfg.preprocess().shape(1);
            want[0] = -1;
            from = "quantcal.calibration.preprocess (" + cfg.preprocess().channels() + " x " + cfg.preprocess().height()
                    + " x " + cfg.preprocess().width() + ", " + cfg.preprocess().layout() + ")";
        } else if (model != null) {
            want = model.clone();
            from = null;
        } else {
            throw new ModelException("model input " + in.name() + " of " + cfg.model() + " declares no shape: set " + key
                    + " = [-1, ...] (its full shape, batch first)");
        }
        if (model != null && from != null) {
            long[] given = want.clone();
            if (model.length != want.length) {
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has " + shown + " (rank "
                        + model.length + "), "
                        + from + " gives rank " + want.length);
            }
            for (int d = 0; d < model.length; d++) {
                if (model[d] > 0 && want[d] > 0 && model[d] != want[d]) {
                    throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has " + shown + ", " + from
                            + (declared == null ? " gives " + Arrays.toString(given) : "") + ": dimension " + d
                            + " differs (" + model[d] + " against " + given[d] + ")");
                }
                if (want[d] < 0 && model[d] > 0) want[d] = model[d];
            }
        }
        if (want.length == 0) {
            throw new ModelException("model input " + in.name() + " of " + cfg.model() + " is a scalar: quantcal needs a"
                    + " batch dimension first");
        }
        if (want[0] > 1) {
            int open = 1;
            while (open < want.length && want[open] > 0) open++;
            throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has " + shown
                    + ": its first (batch) dimension is fixed to " + want[0] + "; quantcal runs batches of any size, or"
                    + " one sample at a time when the batch is fixed to 1. Export the model with a dynamic batch (or batch 1)"
                    + (open == want.length ? "" : "; its dimension " + open + " is open: if that is the batch (a sequence-first"
                            + " input [T, N, F], a recurrent state [layers, N, hidden]), declare it: "
                            + com.typesafe.config.ConfigUtil.joinPath("quantcal", "input-batch-axes", in.name()) + " = " + open));
        }
        for (int d = 1; d < want.length; d++) {
            if (want[d] <= 0) {
                throw new ModelException("model input " + in.name() + " of " + cfg.model() + " has " + shown + ": dimension "
                        + d + " is not fixed by"
                        + " the model; declare it: " + key + " = " + Arrays.toString(example(want)) + " (batch first, -1 for"
                        + " the batch)");
            }
        }
        return want;
    }

    private static String[] example(long[] shape) {
        String[] s = new String[shape.length];
        for (int d = 0; d < shape.length; d++) s[d] = d == 0 ? "-1" : shape[d] > 0 ? String.valueOf(shape[d]) : "<size>";
        return s;
    }

    /**
     * The Parquet column of each input, in the model's order: {@code quantcal.calibration.parquet.inputs} where it
     * names the input; else {@code parquet.column} for a single-input model; else the column named like the input.
     */
    public static List<Column> columns(ModelInputs inputs, QuantcalConfig cfg, Samples s) {
        List<Column> out = new ArrayList<>();
        for (ModelInputs.Input in : inputs.inputs()) {
            String mapped = cfg.inputs().parquetColumns().get(in.name());
            if (mapped != null) {
                out.add(new Column(mapped, com.typesafe.config.ConfigUtil.joinPath("quantcal", "calibration", "parquet",
                        "inputs", in.name())));
            } else if (inputs.inputs().size() == 1) {
                out.add(new Column(s.parquetColumn(), "quantcal.calibration.parquet.column"));
            } else {
                out.add(new Column(in.name(), "the column named like the input; or map it in " + Inputs.COLUMNS_KEY));
            }
        }
        return out;
    }
}
