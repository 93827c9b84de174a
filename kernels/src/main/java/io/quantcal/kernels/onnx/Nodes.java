package io.quantcal.kernels.onnx;

import onnx.Onnx.AttributeProto;
import onnx.Onnx.NodeProto;

/** Attribute reading with the ONNX defaults, the "is this the default domain" rule, and a node's sole-reader producer. */
final class Nodes {

    private Nodes() {}

    static boolean defaultDomain(String domain) {
        return domain.isEmpty() || domain.equals("ai.onnx");
    }

    static AttributeProto attribute(NodeProto n, String name) {
        for (AttributeProto a : n.getAttributeList()) {
            if (a.getName().equals(name)) return a;
        }
        return null;
    }

    static boolean has(NodeProto n, String name) {
        return attribute(n, name) != null;
    }

    static long intAttr(NodeProto n, String name, long dflt) {
        AttributeProto a = attribute(n, name);
        return a == null ? dflt : a.getI();
    }

    static double floatAttr(NodeProto n, String name, double dflt) {
        AttributeProto a = attribute(n, name);
        return a == null ? dflt : a.getF();
    }

    static String stringAttr(NodeProto n, String name, String dflt) {
        AttributeProto a = attribute(n, name);
        return a == null ? dflt : a.getS().toStringUtf8();
    }

    /** INTS attribute, or null when absent. */
    static long[] intsAttr(NodeProto n, String name) {
        AttributeProto a = attribute(n, name);
        if (a == null) return null;
        long[] v = new long[a.getIntsCount()];
        for (int i = 0; i < v.length; i++) v[i] = a.getInts(i);
        return v;
    }

    /** Input {@code i}, or null when absent or given as "" (the ONNX way to skip an optional input). */
    static String input(NodeProto n, int i) {
        if (i >= n.getInputCount() || n.getInput(i).isEmpty()) return null;
        return n.getInput(i);
    }

    /**
     * The producer of {@code tensor} when it is an {@code op} of the default domain and {@code reader} is the tensor's
     * only reader (the tensor no graph output either); else null.
     */
    static NodeProto soleProducer(OnnxModel m, String tensor, String op, NodeProto reader) {
        NodeProto p = m.producer(tensor);
        if (p == null || !p.getOpType().equals(op) || !defaultDomain(p.getDomain()) || m.isGraphOutput(tensor)) return null;
        java.util.List<NodeProto> readers = m.consumers(tensor);
        return readers.size() == 1 && readers.get(0).getName().equals(reader.getName()) ? p : null;
    }

    static String describe(NodeProto n) {
        return "node " + n.getName() + " (" + n.getOpType() + ")";
    }
}
