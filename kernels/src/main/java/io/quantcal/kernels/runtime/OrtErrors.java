package io.quantcal.kernels.runtime;

import ai.onnxruntime.OrtException;
import io.quantcal.kernels.onnx.OnnxModel;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import onnx.Onnx.NodeProto;

/**
 * ONNX Runtime's error messages as one line that starts with the model file and, where ONNX Runtime names a
 * node, the model's node. ONNX Runtime's own text spans lines ("Got invalid dimensions for input: x for the
 * following indices\n index: 1 ...") and names nodes as its optimized graph calls them: a Conv rewritten by
 * the NCHWc transformer is reported as {@code <its output>_nchwc}, which the model does not contain.
 */
final class OrtErrors {

    /** "Error code - ORT_FAIL - message: ..." */
    private static final Pattern CODE = Pattern.compile("^Error code - (\\w+) - message: ");
    /** A kernel failing at run time (sequential and parallel executors). */
    private static final Pattern RUNNING = Pattern.compile(
            "Non-zero status code returned while running (\\S+) node\\. Name:'([^']*)' Status Message: ");
    /** Graph resolution and shape inference at load time. */
    private static final Pattern NODE_OP = Pattern.compile("Node \\(([^)]*)\\) Op \\(([^)]*)\\)");
    private static final Pattern IN_NODE = Pattern.compile("In Node, \\(\"([^\"]*)\", (\\w+),");

    /** The model's nodes: name → op type, and output tensor → producing node. */
    private final Map<String, String> opOf = new HashMap<>();
    private final Map<String, String> producerOf = new HashMap<>();

    OrtErrors(OnnxModel model) {
        for (NodeProto n : model.graph().getNodeList()) {
            opOf.put(n.getName(), n.getOpType());
            for (String o : n.getOutputList()) if (!o.isEmpty()) producerOf.put(o, n.getName());
        }
    }

    /**
     * {@code <source>: ONNX Runtime <what> [at node <node> (<op>)]: <ONNX Runtime's message on one line> (<code>)}.
     */
    String message(String source, String what, OrtException e) {
        String text = e.getMessage() == null ? e.toString() : e.getMessage();
        String code = null;
        Matcher c = CODE.matcher(text);
        if (c.find()) {
            code = c.group(1);
            text = text.substring(c.end());
        }
        String node = null;
        Matcher m = RUNNING.matcher(text);
        if (m.find()) {
            node = node(m.group(2), m.group(1));
            text = text.substring(0, m.start()) + text.substring(m.end());
        } else if ((m = NODE_OP.matcher(text)).find() || (m = IN_NODE.matcher(text)).find()) {
            node = node(m.group(1), m.group(2));
        }
        StringBuilder b = new StringBuilder(source).append(": ONNX Runtime ").append(what);
        if (node != null) b.append(" at ").append(node);
        b.append(": ").append(oneLine(text));
        if (code != null) b.append(" (").append(code).append(')');
        return b.toString();
    }

    /** The model's node for a name ONNX Runtime reports, with what ONNX Runtime calls it when that differs. */
    String node(String ortName, String ortOp) {
        if (opOf.containsKey(ortName)) return "node " + ortName + " (" + opOf.get(ortName) + ")";
        // Optimizers name the nodes they make after a model node or the tensor it produced, plus a suffix
        // ("y_nchwc", "conv1_token_3"): the longest model name or output that prefixes the reported one.
        String best = null;
        int bestLength = 0;
        for (String n : opOf.keySet()) {
            if (n.length() > bestLength && prefixes(n, ortName)) {
                best = n;
                bestLength = n.length();
            }
        }
        for (var e : producerOf.entrySet()) {
            if (e.getKey().length() > bestLength && prefixes(e.getKey(), ortName)) {
                best = e.getValue();
                bestLength = e.getKey().length();
            }
        }
        if (best != null) {
            return "node " + best + " (" + opOf.get(best) + "; ONNX Runtime's optimized graph calls it " + ortName + ")";
        }
        return "node " + ortName + " (" + ortOp + ", as ONNX Runtime's optimized graph names it)";
    }

    private static boolean prefixes(String name, String reported) {
        return !name.isEmpty() && reported.startsWith(name) && reported.length() > name.length()
                && !Character.isLetterOrDigit(reported.charAt(name.length()));
    }

    static String oneLine(String s) {
        return s.strip().replaceAll("\\s*[\\r\\n]+\\s*", " ");
    }
}
