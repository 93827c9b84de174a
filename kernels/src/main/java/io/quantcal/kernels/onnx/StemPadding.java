package io.quantcal.kernels.onnx;

import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;
import onnx.Onnx.TensorProto;

/**
 * The {@code ort} profile's stem rule: a quantized Conv over fewer than {@value #CHANNELS} input channels (the
 * first layer of an image model: 1 or 3) reads its quantized input padded with channels of its zero point up to
 * {@value #CHANNELS} (a Pad between its QuantizeLinear and DequantizeLinear, so the QuantizeLinear still reads the
 * tensor the scale table names), and its int8 weight gets as many channels of zero-valued codes (the weight's
 * zero point). Opset 11 and above (where Pad's constant is an input of the data's type).
 *
 * <p>Why: ONNX Runtime's QLinearConv runs its fast convolution for int8 weights only when the input channels
 * are a multiple of 4; otherwise it takes a generic im2col path, which on a one-channel 28×28 stem measured 5–6×
 * the time of the float convolution it replaces (and the whole model slower than FP32). Padded, the stem
 * takes the fast path: on a CPU without VNNI resnet_small went from 1.17× to 1.27× FP32, mobilenet_small from
 * 0.51× to 0.77×, the 3-channel squeezenet of the zoo from 0.58× to 0.73× (README, Export profiles).
 *
 * <p>An input that arrives channels-last (a Transpose [0, 3, 1, 2] of an NHWC model input, as tf2onnx writes it) is
 * padded by a 1×1 integer convolution instead of a Pad ({@code channelsConv}): there ONNX Runtime cancels the
 * Transposes and pads the innermost axis element by element. Measured interleaved, batch 32, 2 threads: resnet_small
 * with an NHWC input 1.13× → 1.24× FP32 (the Pad took 598 µs of the batch, the convolution 176 µs); torchvision
 * ResNet-18 with an NHWC input at 224, batch 8: 2.90× → 3.10× (NCHW, padded by the Pad: 3.18×).
 *
 * <p>The result is the same number: every product of a padded channel is (Z_x − Z_x)·(Z_w − Z_w) = 0 in
 * QLinearConv's integer sum, and 0.0·0.0 in a float reading of the Q/DQ graph.
 *
 * <p>Applied only where nothing else sees the padding: the Conv has group 1, its input is a DequantizeLinear read by
 * no other node, fed by a QuantizeLinear read by nothing else; its weight is an integer initializer behind a
 * DequantizeLinear on axis 0, read only there. The float tensor the QuantizeLinear reads stays as it was for its
 * other readers.
 */
final class StemPadding {

    /** The input channels ONNX Runtime's fast integer convolution wants a multiple of. */
    static final int CHANNELS = 4;

    private StemPadding() {}

    /** {@code qdq} with every Conv that the rule applies to padded; the same model when there is none. */
    static OnnxModel pad(OnnxModel qdq) {
        GraphEditor e = null;
        for (NodeProto conv : qdq.nodes()) {
            Stem s = Stem.of(qdq, conv);
            if (s == null) continue;
            if (e == null) e = new GraphEditor(qdq.graph());
            s.apply(qdq, e);
        }
        return e == null ? qdq : qdq.withGraph(e.build());
    }

    /** One Conv the rule applies to: its input's Q and DQ, its weight's DQ and integer initializer. */
    private record Stem(NodeProto conv, NodeProto quantize, NodeProto inputDq, NodeProto weightDq, String codes, long[] shape) {

        static Stem of(OnnxModel m, NodeProto conv) {
            // Pad takes its constant as an input, of the data's (integer) type, from opset 11
            if (m.opset() < 11 || !conv.getOpType().equals("Conv") || !Nodes.defaultDomain(conv.getDomain())) return null;
            if (Nodes.intAttr(conv, "group", 1) != 1 || conv.getInputCount() < 2) return null;
            NodeProto xdq = Nodes.soleProducer(m, conv.getInput(0), "DequantizeLinear", conv);
            NodeProto q = xdq == null ? null : Nodes.soleProducer(m, xdq.getInput(0), "QuantizeLinear", xdq);
            if (q == null || Nodes.input(xdq, 2) == null || !m.isInitializer(xdq.getInput(2))) return null;
            NodeProto wdq = Nodes.soleProducer(m, conv.getInput(1), "DequantizeLinear", conv);
            if (wdq == null || !m.isInitializer(wdq.getInput(1))) return null;
            // per channel (a 1-D scale) only on the output channels, DequantizeLinear's axis 0 (its default is 1)
            if (m.initializer(wdq.getInput(1)).getDimsCount() == 1 && Nodes.intAttr(wdq, "axis", 1) != 0) return null;
            String codes = wdq.getInput(0);
            if (!m.isInitializer(codes) || m.consumers(codes).size() != 1) return null;
            int type = m.initializer(codes).getDataType();
            // int8 codes only: the fast path is ONNX Runtime's symmetric u8·s8 convolution; with uint8 weights padding
            // only adds work (mobilenet_small 0.40× → 0.35× FP32, measured)
            if (type != TensorProto.DataType.INT8_VALUE) return null;
            // an 8-bit input only: ONNX Runtime's integer convolution (and its Pad kernel) take no 16-bit activations
            int xType = m.initializer(xdq.getInput(2)).getDataType();
            if (xType != TensorProto.DataType.UINT8_VALUE && xType != TensorProto.DataType.INT8_VALUE) return null;
            long[] shape = m.shape(codes);
            if (shape.length < 3 || shape[1] >= CHANNELS) return null;
            return new Stem(conv, q, xdq, wdq, codes, shape);
        }

        void apply(OnnxModel m, GraphEditor e) {
            int out = (int) shape[0];
            int in = (int) shape[1];
            int inner = 1;
            for (int d = 2; d < shape.length; d++) inner *= (int) shape[d];
            int[] q = m.initializerInts(codes);
            String zp = Nodes.input(weightDq, 2);
            int[] z = zp == null ? new int[] {0} : m.initializerInts(zp);
            int[] padded = new int[out * CHANNELS * inner];
            for (int o = 0; o < out; o++) {
                int zo = z.length == 1 ? z[0] : z[o];
                for (int c = 0; c < CHANNELS; c++) {
                    for (int k = 0; k < inner; k++) {
                        padded[(o * CHANNELS + c) * inner + k] = c < in ? q[(o * in + c) * inner + k] : zo;
                    }
                }
            }
            long[] newShape = shape.clone();
            newShape[1] = CHANNELS;
            TensorProto.DataType type = TensorProto.DataType.forNumber(m.initializer(codes).getDataType());
            e.putInitializer(Graphs.intTensor(codes, type, padded, newShape));

            String qx = quantize.getOutput(0);
            if (channelsLast(m)) {
                channelsConv(e, qx, in);
                return;
            }
            // zero channels appended on axis 1 of the quantized input, valued at its zero point (the rank is the weight's)
            long[] pads = new long[2 * shape.length];
            pads[shape.length + 1] = CHANNELS - in;
            String name = e.uniqueName(conv.getName() + "_stem_pad");
            String padsName = e.uniqueName(name + "_pads");
            e.putInitializer(Graphs.int64Tensor(padsName, pads, pads.length));
            String paddedX = e.uniqueName(qx + "_channels_padded");
            NodeProto pad = Graphs.node("Pad", name, List.of(qx, padsName, Nodes.input(inputDq, 2)), List.of(paddedX));
            int at = e.position(inputDq.getName());
            e.insertBefore(at, pad);
            at = e.position(inputDq.getName());
            e.replace(at, e.node(at).toBuilder().setInput(0, paddedX).build());
        }

        /**
         * Whether the input arrives channels-last: the QuantizeLinear reads a Transpose [0, 3, 1, 2] (an NHWC model
         * input, as tf2onnx writes it). ONNX Runtime then cancels that Transpose against the one its NHWC integer
         * convolution needs, and a Pad would pad the innermost axis, which its Pad kernel does element by element.
         */
        boolean channelsLast(OnnxModel m) {
            NodeProto t = m.producer(quantize.getInput(0));
            if (t == null || !t.getOpType().equals("Transpose") || !Nodes.defaultDomain(t.getDomain())) return false;
            return shape.length == 4 && java.util.Arrays.equals(Nodes.intsAttr(t, "perm"), new long[] {0, 3, 1, 2});
        }

        /**
         * The padding as a 1×1 integer convolution of the quantized input: DequantizeLinear, Conv with int8 weight
         * codes that copy channel c to channel c (1) and write 0 elsewhere (scale 1, zero point 0), QuantizeLinear at
         * the input's own scale and zero point. Exact: ONNX Runtime's QLinearConv sums the one product (x − z)·1 and
         * requantizes it by s·1/s = 1, giving x, and z in the added channels; a float reading gives (x − z)·s·1, which
         * QuantizeLinear rounds back to x. ONNX Runtime runs it channels-last, with no Transpose and no Pad.
         */
        void channelsConv(GraphEditor e, String qx, int in) {
            String base = conv.getName() + "_stem_channels";
            String scale = inputDq.getInput(1), zero = Nodes.input(inputDq, 2);
            int[] copy = new int[CHANNELS * in];
            for (int c = 0; c < in; c++) copy[c * in + c] = 1;
            String w = e.uniqueName(base + "_weight_quantized");
            e.putInitializer(Graphs.intTensor(w, TensorProto.DataType.INT8, copy, new long[] {CHANNELS, in, 1, 1}));
            String ws = e.uniqueName(base + "_weight_scale");
            e.putInitializer(Graphs.floatTensor(ws, new float[] {1f}));
            String wz = e.uniqueName(base + "_weight_zero_point");
            e.putInitializer(Graphs.intTensor(wz, TensorProto.DataType.INT8, new int[] {0}));
            String xf = e.uniqueName(qx + "_stem_channels_input"), wf = e.uniqueName(w + "_dequantized");
            String y = e.uniqueName(base + "_output"), paddedX = e.uniqueName(qx + "_channels_padded");
            int at = e.position(inputDq.getName());
            e.insertBefore(at, Graphs.node("DequantizeLinear", e.uniqueName(base + "_input_dq"), List.of(qx, scale, zero),
                    List.of(xf)));
            e.insertBefore(at, Graphs.node("DequantizeLinear", e.uniqueName(base + "_weight_dq"), List.of(w, ws, wz),
                    List.of(wf)));
            e.insertBefore(at, Graphs.node("Conv", e.uniqueName(base), List.of(xf, wf), List.of(y),
                    java.util.Map.of("kernel_shape", new long[] {1, 1})));
            e.insertBefore(at, Graphs.node("QuantizeLinear", e.uniqueName(base + "_q"), List.of(y, scale, zero),
                    List.of(paddedX)));
            at = e.position(inputDq.getName());
            e.replace(at, e.node(at).toBuilder().setInput(0, paddedX).build());
        }
    }
}
