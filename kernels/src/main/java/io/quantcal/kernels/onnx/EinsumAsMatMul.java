package io.quantcal.kernels.onnx;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.NodeProto;

/**
 * The front end's Einsum rule: a two-operand Einsum that is a (batched) matrix product, one letter summed, one free
 * letter on each side and the same batch letters in both operands and the output (or, with no batch letter, more free
 * letters on one side, which MatMul broadcasts the other operand over), is written as the MatMul it computes,
 * with Transposes where its letters come in another order: torchvision's MaxViT writes its attention products so
 * ({@code "B G H I D, B G H J D -> B G H I J"} and {@code "B G H I J, B G H J D -> B G H I D"}), and a linear layer
 * written {@code "bsh,hd->bsd"} or {@code "bij,kj->bik"} becomes a MatMul with a constant weight (its Transpose folded
 * into the weight by {@link ConstantFolder}). Such a MatMul is quantized like any other (ONNX Runtime has no integer
 * Einsum, and its quantizer leaves Einsum in float). The node keeps its name; the same products, summed in the order
 * of ONNX Runtime's GEMM (tested against its Einsum within float rounding).
 *
 * <p>A leading ellipsis ("...") is taken when it leads all three terms and no Transpose is needed (MatMul broadcasts
 * the leading axes as Einsum does). Anything else (one operand or three, a repeated letter, an outer product, two
 * letters summed) stays an Einsum, and coverage reports one with a constant operand.
 */
public final class EinsumAsMatMul {

    private EinsumAsMatMul() {}

    /** The rewritten model and the Einsum nodes written as MatMul, in graph order. */
    public record Result(OnnxModel model, List<String> rewritten) {}

    /** How one Einsum maps to a MatMul: each operand's permutation to [batch..., m, k] / [batch..., k, n] (null: none). */
    record Plan(long[] permA, long[] permB, long[] permOut) {}

    public static Result rewrite(OnnxModel m) {
        GraphEditor e = null;
        List<String> done = new ArrayList<>();
        for (NodeProto n : m.nodes()) {
            if (!n.getOpType().equals("Einsum") || !Nodes.defaultDomain(n.getDomain()) || n.getInputCount() != 2
                    || n.getOutputCount() != 1) {
                continue;
            }
            Plan p = plan(Nodes.stringAttr(n, "equation", ""));
            if (p == null) continue;
            if (e == null) e = new GraphEditor(m.graph());
            int at = e.position(n.getName());
            String a = operand(e, at, n, 0, "a", p.permA()), b = operand(e, at, n, 1, "b", p.permB()), y = n.getOutput(0);
            String product = y;
            if (p.permOut() != null) {
                product = e.uniqueName(y + "_matmul");
                e.insertAfter(at, Graphs.node("Transpose", e.uniqueName(n.getName() + "_output_transposed"),
                        List.of(product), List.of(y), Map.of("perm", p.permOut())));
            }
            e.replace(at, Graphs.node("MatMul", n.getName(), List.of(a, b), List.of(product)));
            done.add(n.getName());
        }
        if (e == null) return new Result(m, done);
        return new Result(m.withGraph(e.build()), done);
    }

    /** Einsum {@code n}'s input {@code k}, read through a Transpose by {@code perm} inserted before it when there is one. */
    private static String operand(GraphEditor e, int at, NodeProto n, int k, String side, long[] perm) {
        String x = n.getInput(k);
        if (perm == null) return x;
        String t = e.uniqueName(x + "_" + n.getName() + "_transposed");
        e.insertBefore(at, Graphs.node("Transpose", e.uniqueName(n.getName() + "_" + side + "_transposed"), List.of(x),
                List.of(t), Map.of("perm", perm)));
        return t;
    }

    /** The MatMul an equation computes, or null when it is not one this rule writes. */
    static Plan plan(String equation) {
        String eq = equation.replaceAll("\\s+", "");
        int arrow = eq.indexOf("->");
        if (arrow < 0) return null;
        String[] ins = eq.substring(0, arrow).split(",", -1);
        if (ins.length != 2) return null;
        String out = eq.substring(arrow + 2);
        boolean ellipsis = ins[0].startsWith("...") && ins[1].startsWith("...") && out.startsWith("...");
        if (ellipsis) {
            ins[0] = ins[0].substring(3);
            ins[1] = ins[1].substring(3);
            out = out.substring(3);
        }
        List<Character> a = letters(ins[0]), b = letters(ins[1]), y = letters(out);
        if (a == null || b == null || y == null) return null;
        List<Character> batch = new ArrayList<>(), summed = new ArrayList<>(), onlyA = new ArrayList<>(),
                onlyB = new ArrayList<>();
        for (char c : y) {
            if (a.contains(c) && b.contains(c)) batch.add(c);
            else if (a.contains(c)) onlyA.add(c);
            else if (b.contains(c)) onlyB.add(c);
            else return null;
        }
        for (char c : a) if (!y.contains(c)) summed.add(c);
        for (char c : b) if (!y.contains(c) && !summed.contains(c)) return null; // summed over one operand alone
        for (char c : summed) if (!b.contains(c)) return null;
        if (summed.size() != 1 || onlyA.isEmpty() || onlyB.isEmpty()) return null;
        // MatMul broadcasts a 2-D operand over the other's leading axes: with no batch letter, either operand may
        // carry more free letters (x [b, s, h] times a weight [h, d]); its last one in the output is the row or column
        List<Character> lead = new ArrayList<>();
        if (onlyA.size() > 1 && onlyB.size() == 1 && batch.isEmpty()) {
            lead.addAll(onlyA.subList(0, onlyA.size() - 1));
        } else if (onlyB.size() > 1 && onlyA.size() == 1 && batch.isEmpty()) {
            lead.addAll(onlyB.subList(0, onlyB.size() - 1));
        } else if (onlyA.size() != 1 || onlyB.size() != 1) {
            return null;
        }
        char k = summed.get(0), mm = onlyA.get(onlyA.size() - 1), nn = onlyB.get(onlyB.size() - 1);
        List<Character> wantA = new ArrayList<>(batch), wantB = new ArrayList<>(batch), product = new ArrayList<>(batch);
        if (onlyA.size() > 1) wantA.addAll(lead);
        if (onlyB.size() > 1) wantB.addAll(lead);
        product.addAll(lead);
        wantA.add(mm);
        wantA.add(k);
        wantB.add(k);
        wantB.add(nn);
        product.add(mm);
        product.add(nn);
        long[] pa = perm(a, wantA), pb = perm(b, wantB), po = perm(product, y);
        if (ellipsis && (pa != null || pb != null || po != null)) return null;
        return new Plan(pa, pb, po);
    }

    /** The letters of a term, or null with a repeated letter or anything but letters. */
    private static List<Character> letters(String term) {
        List<Character> out = new ArrayList<>();
        for (char c : term.toCharArray()) {
            if (!Character.isLetter(c) || out.contains(c)) return null;
            out.add(c);
        }
        return out;
    }

    /** The Transpose perm taking axes ordered {@code from} to {@code to}; null when they are already so. */
    private static long[] perm(List<Character> from, List<Character> to) {
        if (from.equals(to)) return null;
        long[] p = new long[to.size()];
        for (int i = 0; i < to.size(); i++) p[i] = from.indexOf(to.get(i));
        return p;
    }
}
