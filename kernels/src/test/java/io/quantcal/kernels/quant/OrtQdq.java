package io.quantcal.kernels.quant;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.quantcal.kernels.onnx.Graphs;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The reference for the quantizers: a QuantizeLinear → DequantizeLinear model run in ONNX Runtime, with the
 * integer codes exposed as a second graph output. An optional Clip between the two restricts the codes to a
 * narrow grid (QuantizeLinear itself always saturates to the full range of its integer type).
 */
final class OrtQdq {

    /** Codes and dequantized values, as ONNX Runtime computed them. */
    record Result(int[] q, float[] y) {}

    private OrtQdq() {}

    /** The integer type QuantizeLinear produces for a grid: its zero point's type. */
    static TensorProto.DataType typeOf(QuantGrid grid) {
        if (grid.bits() == 8) return grid.signed() ? TensorProto.DataType.INT8 : TensorProto.DataType.UINT8;
        if (grid.bits() == 16) return grid.signed() ? TensorProto.DataType.INT16 : TensorProto.DataType.UINT16;
        throw new IllegalArgumentException("ONNX QuantizeLinear has no " + grid.bits() + "-bit integer type");
    }

    /**
     * Runs x (row-major, {@code shape}) through Q → [Clip(qmin, qmax) when the grid is narrower than its type]
     * → DQ with p's scales and zero points, in a model of the given opset.
     */
    static Result run(long opset, float[] x, long[] shape, QuantParams p) throws OrtException {
        return run(opset, x, shape, p, true);
    }

    /** As {@link #run(long, float[], long[], QuantParams)}; {@code clipToGrid = false} leaves out the Clip. */
    static Result run(long opset, float[] x, long[] shape, QuantParams p, boolean clipToGrid) throws OrtException {
        TensorProto.DataType type = typeOf(p.grid());
        float[] scale = new float[p.channels()];
        int[] zp = new int[p.channels()];
        for (int c = 0; c < scale.length; c++) {
            scale[c] = (float) p.scale(c);
            zp[c] = p.zeroPoint(c);
        }
        long[] paramDims = p.perChannel() ? new long[] {p.channels()} : new long[0];
        List<TensorProto> init = new ArrayList<>();
        init.add(Graphs.floatTensor("scale", scale, paramDims));
        init.add(intTensor(type, "zp", zp, paramDims));
        Map<String, Object> axis = p.perChannel() ? Map.of("axis", (long) p.axis()) : Map.of();
        List<NodeProto> nodes = new ArrayList<>();
        nodes.add(Graphs.node("QuantizeLinear", "quantize", List.of("x", "scale", "zp"), List.of("q_full"), axis));
        QuantGrid full = new QuantGrid(p.grid().bits(), p.grid().signed(), false);
        String q = "q_full";
        if (clipToGrid && (full.qmin() != p.qmin() || full.qmax() != p.qmax())) {
            init.add(intTensor(type, "qmin", new int[] {p.qmin()}));
            init.add(intTensor(type, "qmax", new int[] {p.qmax()}));
            nodes.add(Graphs.node("Clip", "narrow", List.of("q_full", "qmin", "qmax"), List.of("q")));
            q = "q";
        }
        nodes.add(Graphs.node("DequantizeLinear", "dequantize", List.of(q, "scale", "zp"), List.of("y"), axis));
        ModelProto model = Graphs.model(opset, nodes, init, List.of(Graphs.floatValue("x", shape)),
                List.of(Graphs.value(q, type, shape), Graphs.floatValue("y", shape)));
        if (opset >= 21) {
            // ONNX ties opset 21 to IR version 10; the bundled protobuf classes only lack newer fields we do not use
            model = model.toBuilder().setIrVersion(10).build();
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(model.toByteArray(), new OrtSession.SessionOptions());
             OnnxTensor in = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), shape);
             OrtSession.Result r = s.run(Map.of("x", in))) {
            int[] codes = decode(type, ((OnnxTensor) r.get(q).orElseThrow()).getByteBuffer(), x.length);
            float[] y = new float[x.length];
            FloatBuffer yb = ((OnnxTensor) r.get("y").orElseThrow()).getFloatBuffer();
            yb.rewind();
            yb.get(y);
            return new Result(codes, y);
        }
    }

    private static TensorProto intTensor(TensorProto.DataType type, String name, int[] v, long... dims) {
        return switch (type) {
            case INT8 -> Graphs.int8Tensor(name, v, dims);
            case UINT8 -> Graphs.uint8Tensor(name, v, dims);
            case INT16 -> Graphs.int16Tensor(name, v, dims);
            case UINT16 -> Graphs.uint16Tensor(name, v, dims);
            default -> throw new IllegalArgumentException(type.toString());
        };
    }

    private static int[] decode(TensorProto.DataType type, ByteBuffer b, int n) {
        b.order(ByteOrder.nativeOrder());
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (type) {
                case INT8 -> b.get(i);
                case UINT8 -> b.get(i) & 0xff;
                case INT16 -> b.getShort(2 * i);
                case UINT16 -> b.getShort(2 * i) & 0xffff;
                default -> throw new IllegalArgumentException(type.toString());
            };
        }
        return out;
    }
}
