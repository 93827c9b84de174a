package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.FunctionProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.ValueInfoProto;

/**
 * Expands every call of a model-local function (a {@link FunctionProto} of {@code ModelProto.functions}, written by
 * {@code torch.onnx.export(export_modules_as_functions=...)}, by torch's dynamo exporter and by onnxscript) into the
 * function's nodes, as ONNX Runtime does when it loads the model, so that the Conv/Gemm/MatMul nodes inside a function
 * are layers like any other: found, quantized, reported. Without this a function's layers were invisible (a ResNet
 * whose blocks were functions reported "2 of 2" layers quantized with 16 of 18 left in float).
 *
 * <p>The rules are ONNX's function semantics: a call's inputs and outputs replace the function's formal ones by
 * position (a missing optional input is ""; an output the call does not name gets a new name); every other value of
 * the body gets a new name unique in the model, made from the call's node name ({@code <call>/<value>}); a body node is
 * named {@code <call>/<node>}; an attribute that refers to a call attribute ({@code ref_attr_name}) takes the call's
 * value under the body attribute's name or, when the call does not set it, the function's default (IR 9's
 * {@code attribute_proto}), and is left out when there is neither (the operator's default then applies). Calls pick
 * their function by domain, name and overload (IR 10). Names the body's subgraphs (If branches, Loop bodies) read from
 * the function are renamed with it. A body that calls functions is expanded in turn; a function that calls itself, directly or not, is an error, as is a
 * function whose default-domain opset differs from the model's (its nodes would not mean the same in the model).
 * Functions no call uses any more are dropped. The count of calls per function is kept in the model's metadata
 * ({@link #KEY}) for the run's front-end report.
 */
public final class FunctionInlining {

    /** Metadata key: "Block=2,Stem=1", the calls expanded per function (by name). */
    static final String KEY = "quantcal.functions_inlined";

    /** Deeper nesting than this is taken for recursion. */
    private static final int MAX_DEPTH = 64;

    private FunctionInlining() {}

    /** {@code proto} with every call of a local function expanded; the same object when it has no function. */
    static ModelProto inline(String source, ModelProto proto) {
        if (proto.getFunctionsCount() == 0) return proto;
        Map<String, FunctionProto> functions = new LinkedHashMap<>();
        Long modelOpset = null;
        for (OperatorSetIdProto o : proto.getOpsetImportList()) if (Nodes.defaultDomain(o.getDomain())) modelOpset = o.getVersion();
        for (FunctionProto f : proto.getFunctionsList()) {
            for (OperatorSetIdProto o : f.getOpsetImportList()) {
                if (Nodes.defaultDomain(o.getDomain()) && modelOpset != null && o.getVersion() != modelOpset) {
                    throw new ModelException(source + ": local function " + f.getDomain() + "." + f.getName()
                            + " imports opset " + o.getVersion() + " of the default domain, the model " + modelOpset
                            + ": quantcal expands functions into the model's graph, where its nodes would be read at opset "
                            + modelOpset + " (re-export with one opset)");
                }
            }
            functions.put(key(f.getDomain(), f.getName(), overload(f)), f);
        }
        Set<String> taken = new HashSet<>();
        GraphProto g = proto.getGraph();
        Subgraphs.graphNames(g, taken);
        Inliner in = new Inliner(source, functions, taken);
        GraphProto inlined = in.graph(g, 0);
        if (in.calls.isEmpty()) return proto;

        ModelProto.Builder mb = proto.toBuilder().setGraph(inlined).clearFunctions();
        // the domains the expanded nodes use: the functions' own imports, where the model lacks them
        Set<String> domains = new HashSet<>();
        for (OperatorSetIdProto o : proto.getOpsetImportList()) domains.add(o.getDomain());
        for (FunctionProto f : functions.values()) {
            for (OperatorSetIdProto o : f.getOpsetImportList()) {
                if (Nodes.defaultDomain(o.getDomain()) || !domains.add(o.getDomain())) continue;
                mb.addOpsetImport(o);
            }
        }
        StringBuilder counts = new StringBuilder();
        in.calls.forEach((f, c) -> counts.append(counts.length() == 0 ? "" : ",").append(f).append('=').append(c));
        mb.addMetadataProps(onnx.Onnx.StringStringEntryProto.newBuilder().setKey(KEY).setValue(counts.toString()));
        return mb.build();
    }

    /** The calls expanded per function name, from {@link #KEY}; empty when none. */
    static Map<String, Integer> counts(ModelProto proto) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (var e : proto.getMetadataPropsList()) {
            if (!e.getKey().equals(KEY) || e.getValue().isEmpty()) continue;
            for (String part : e.getValue().split(",")) {
                int eq = part.lastIndexOf('=');
                out.put(part.substring(0, eq), Integer.parseInt(part.substring(eq + 1)));
            }
        }
        return out;
    }

    private static String key(String domain, String name, String overload) {
        return domain + "\u0000" + name + "\u0000" + overload;
    }

    // Fields of IR 9 and 10 that quantcal's protobuf classes (IR 8) keep as unknown fields, read by number:
    // FunctionProto.attribute_proto = 11 (IR 9: attribute defaults), FunctionProto.overload = 13 and
    // NodeProto.overload = 8 (IR 10: several functions of one name told apart).
    private static final int FUNCTION_ATTRIBUTE_PROTO = 11;
    private static final int FUNCTION_OVERLOAD = 13;
    private static final int NODE_OVERLOAD = 8;

    private static String overload(FunctionProto f) {
        return unknownString(f.getUnknownFields(), FUNCTION_OVERLOAD);
    }

    private static String overload(NodeProto n) {
        return unknownString(n.getUnknownFields(), NODE_OVERLOAD);
    }

    private static String unknownString(org.nd4j.shade.protobuf.UnknownFieldSet fields, int number) {
        if (!fields.hasField(number)) return "";
        List<org.nd4j.shade.protobuf.ByteString> values = fields.getField(number).getLengthDelimitedList();
        return values.isEmpty() ? "" : values.get(values.size() - 1).toStringUtf8();
    }

    /** A function's attribute defaults (IR 9's attribute_proto), by name. */
    private static Map<String, AttributeProto> defaults(String source, FunctionProto f) {
        Map<String, AttributeProto> out = new HashMap<>();
        if (!f.getUnknownFields().hasField(FUNCTION_ATTRIBUTE_PROTO)) return out;
        for (org.nd4j.shade.protobuf.ByteString b : f.getUnknownFields().getField(FUNCTION_ATTRIBUTE_PROTO).getLengthDelimitedList()) {
            try {
                AttributeProto a = AttributeProto.parseFrom(b);
                out.put(a.getName(), a);
            } catch (org.nd4j.shade.protobuf.InvalidProtocolBufferException e) {
                throw new ModelException(source + ": local function " + f.getDomain() + "." + f.getName()
                        + ": an attribute default (attribute_proto) is not an AttributeProto (" + e.getMessage() + ")", e);
            }
        }
        return out;
    }

    private static final class Inliner {
        final String source;
        final Map<String, FunctionProto> functions;
        final Set<String> taken;
        final Map<String, Integer> calls = new LinkedHashMap<>();

        Inliner(String source, Map<String, FunctionProto> functions, Set<String> taken) {
            this.source = source;
            this.functions = functions;
            this.taken = taken;
        }

        /** {@code g} with its calls expanded, in its subgraphs too. */
        GraphProto graph(GraphProto g, int depth) {
            boolean any = false;
            List<NodeProto> out = new ArrayList<>(g.getNodeCount());
            for (NodeProto n : g.getNodeList()) any |= expand(n, depth, out);
            if (!any) return g;
            return g.toBuilder().clearNode().addAllNode(out).build();
        }

        /** Appends {@code n}, expanded when it calls a function, to {@code out}; whether anything changed. */
        boolean expand(NodeProto n, int depth, List<NodeProto> out) {
            NodeProto withSub = subgraphs(n, depth);
            FunctionProto f = functions.get(key(n.getDomain(), n.getOpType(), overload(n)));
            if (f == null) {
                out.add(withSub);
                return withSub != n;
            }
            if (depth >= MAX_DEPTH) {
                throw new ModelException(source + ": local function " + f.getDomain() + "." + f.getName() + " calls itself"
                        + " (node " + n.getName() + " is " + MAX_DEPTH + " function calls deep): a recursive function"
                        + " cannot be expanded");
            }
            calls.merge(f.getName(), 1, Integer::sum);
            for (NodeProto body : body(withSub, f)) expand(body, depth + 1, out);
            return true;
        }

        /** {@code n} with the calls inside its subgraphs expanded. */
        NodeProto subgraphs(NodeProto n, int depth) {
            return Subgraphs.mapGraphs(n, g -> graph(g, depth));
        }

        /** The nodes of {@code f}'s body for the call {@code call}, with the call's names and attributes. */
        List<NodeProto> body(NodeProto call, FunctionProto f) {
            String prefix = call.getName().isEmpty() ? f.getName() : call.getName();
            Map<String, String> rename = new HashMap<>();
            for (int i = 0; i < f.getInputCount(); i++) {
                rename.put(f.getInput(i), i < call.getInputCount() ? call.getInput(i) : "");
            }
            for (int i = 0; i < f.getOutputCount(); i++) {
                String actual = i < call.getOutputCount() ? call.getOutput(i) : "";
                rename.put(f.getOutput(i), actual.isEmpty() ? fresh(prefix + "/" + f.getOutput(i)) : actual);
            }
            for (NodeProto n : f.getNodeList()) {
                for (String o : n.getOutputList()) {
                    if (!o.isEmpty() && !rename.containsKey(o)) rename.put(o, fresh(prefix + "/" + o));
                }
            }
            // the call's attributes over the function's defaults
            Map<String, AttributeProto> given = defaults(source, f);
            for (AttributeProto a : call.getAttributeList()) given.put(a.getName(), a);
            List<NodeProto> out = new ArrayList<>(f.getNodeCount());
            for (int k = 0; k < f.getNodeCount(); k++) {
                NodeProto n = f.getNode(k);
                NodeProto.Builder b = n.toBuilder().clearInput().clearOutput().clearAttribute();
                b.setName(fresh(prefix + "/" + (n.getName().isEmpty() ? n.getOpType() + "_" + k : n.getName())));
                for (String i : n.getInputList()) b.addInput(i.isEmpty() ? i : rename.getOrDefault(i, i));
                for (String o : n.getOutputList()) b.addOutput(o.isEmpty() ? o : rename.get(o));
                for (AttributeProto a : n.getAttributeList()) {
                    AttributeProto r = resolved(a, rename, given);
                    if (r != null) b.addAttribute(r);
                }
                out.add(b.build());
            }
            return out;
        }

        /** A name not used in the model yet: {@code want}, or {@code want_2}, {@code want_3}, ... */
        String fresh(String want) {
            String s = want;
            for (int k = 2; !taken.add(s); k++) s = want + "_" + k;
            return s;
        }
    }

    /**
     * A body node's attribute as the call gives it: one that refers to a function attribute ({@code ref_attr_name})
     * takes the call's value under its own name, or is null (left out) when the call sets none; any other keeps its
     * value, its subgraphs renamed ({@link #renamedGraphs}).
     */
    private static AttributeProto resolved(AttributeProto a, Map<String, String> rename, Map<String, AttributeProto> given) {
        if (a.getRefAttrName().isEmpty()) return renamedGraphs(a, rename, given);
        AttributeProto v = given.get(a.getRefAttrName());
        return v == null ? null : v.toBuilder().setName(a.getName()).clearRefAttrName().build();
    }

    /**
     * {@code a} with the function-scope names its subgraphs read from outside renamed (names they define stay), and
     * their attributes that refer to the function's ({@code ref_attr_name}) given the call's value.
     */
    private static AttributeProto renamedGraphs(AttributeProto a, Map<String, String> rename, Map<String, AttributeProto> given) {
        return Subgraphs.mapGraphs(a, g -> renamedGraph(g, rename, given));
    }

    private static GraphProto renamedGraph(GraphProto g, Map<String, String> outer, Map<String, AttributeProto> given) {
        Set<String> local = new HashSet<>();
        for (ValueInfoProto v : g.getInputList()) local.add(v.getName());
        for (TensorProto t : g.getInitializerList()) local.add(t.getName());
        for (NodeProto n : g.getNodeList()) local.addAll(n.getOutputList());
        Map<String, String> rename = new HashMap<>(outer);
        rename.keySet().removeAll(local);
        GraphProto.Builder b = g.toBuilder().clearNode();
        for (NodeProto n : g.getNodeList()) {
            NodeProto.Builder nb = n.toBuilder().clearInput().clearAttribute();
            for (String i : n.getInputList()) nb.addInput(i.isEmpty() ? i : rename.getOrDefault(i, i));
            for (AttributeProto a : n.getAttributeList()) {
                AttributeProto r = resolved(a, rename, given);
                if (r != null) nb.addAttribute(r);
            }
            b.addNode(nb);
        }
        for (int i = 0; i < b.getOutputCount(); i++) {
            String o = b.getOutput(i).getName();
            if (rename.containsKey(o)) b.setOutput(i, b.getOutput(i).toBuilder().setName(rename.get(o)));
        }
        return b.build();
    }
}
