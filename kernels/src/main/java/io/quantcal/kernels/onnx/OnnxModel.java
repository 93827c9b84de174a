package io.quantcal.kernels.onnx;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.StringStringEntryProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.shade.protobuf.ByteString;
import org.nd4j.shade.protobuf.InvalidProtocolBufferException;

/**
 * An ONNX model as quantcal sees it: an immutable ModelProto whose initializers are all inline (external
 * data read at parse time) and whose nodes all have unique names (unnamed nodes get {@code <op>_<index>},
 * written into the model so that every later step, scale table row and exported file names the same
 * node), plus the name of the file it came from for error messages.
 *
 * <p>Only the main graph is indexed; subgraphs of If/Loop/Scan are carried along untouched, and a node holding one
 * counts as a consumer of every main-graph tensor the subgraph reads ({@link Subgraphs}).
 *
 * <p>Serializable as its self-contained bytes, so that it can be broadcast to Spark executors.
 */
public final class OnnxModel implements Serializable {

    private static final long serialVersionUID = 1L;

    /**
     * The newest IR version read: 13, ONNX 1.21's (opset 26). ND4J's protobuf classes describe IR 8; what later IR
     * versions added is carried through untouched as protobuf unknown fields (node, graph and function metadata, device
     * configurations) or, where it matters to quantcal, read by field number (a function's attribute defaults and
     * overloads: {@link FunctionInlining}); element types added since (float8, int4, float4, int2) are data types by
     * number, which quantcal refuses as weights and carries elsewhere.
     */
    public static final long MAX_IR_VERSION = 13;
    /** Oldest default-domain opset: QuantizeLinear/DequantizeLinear appear in opset 10. */
    public static final long MIN_OPSET = 10;
    /**
     * Newest default-domain opset: 26, the newest the bundled ONNX Runtime (1.28) officially runs. From 22 on, the
     * operators quantcal reads or writes changed in their type lists only (bfloat16, float4, float8e8m0, int2), and
     * QuantizeLinear's {@code precision} (23) defaults to the scale's type, float32 here: the same numbers.
     */
    public static final long MAX_OPSET = 26;

    private final transient String source;
    private final transient ModelProto proto;
    private final transient long opset;
    private final transient Map<String, TensorProto> initializers;
    private final transient Map<String, NodeProto> producers;
    private final transient Map<String, List<NodeProto>> consumers;
    private final transient Map<String, NodeProto> nodesByName;
    private final transient Map<String, ValueInfoProto> declared;
    private final transient Set<String> graphInputs;
    private final transient Set<String> graphOutputs;
    private transient volatile List<QuantizableNode> quantizable;
    private transient volatile String sha256;
    private transient volatile long dataBytes = -1;

    private OnnxModel(String source, ModelProto proto) {
        this.source = source;
        this.proto = proto;
        this.opset = defaultOpset(source, proto);
        GraphProto g = proto.getGraph();
        Map<String, TensorProto> inits = new LinkedHashMap<>();
        for (TensorProto t : g.getInitializerList()) inits.put(t.getName(), t);
        this.initializers = Collections.unmodifiableMap(inits);
        Map<String, NodeProto> prod = new HashMap<>();
        Map<String, List<NodeProto>> cons = new HashMap<>();
        Map<String, NodeProto> byName = new LinkedHashMap<>();
        for (NodeProto n : g.getNodeList()) {
            byName.put(n.getName(), n);
            for (String o : n.getOutputList()) if (!o.isEmpty()) prod.put(o, n);
            // a node holding a subgraph (If, Loop, Scan) reads what the subgraph reads from the main graph too
            for (String i : Subgraphs.reads(n)) cons.computeIfAbsent(i, k -> new ArrayList<>()).add(n);
        }
        cons.replaceAll((k, v) -> List.copyOf(v));
        this.producers = prod;
        this.consumers = cons;
        this.nodesByName = byName;
        Map<String, ValueInfoProto> decl = new HashMap<>();
        for (ValueInfoProto v : g.getValueInfoList()) decl.put(v.getName(), v);
        for (ValueInfoProto v : g.getOutputList()) decl.put(v.getName(), v);
        for (ValueInfoProto v : g.getInputList()) decl.put(v.getName(), v);
        this.declared = decl;
        Set<String> ins = new HashSet<>();
        for (ValueInfoProto v : g.getInputList()) if (!inits.containsKey(v.getName())) ins.add(v.getName());
        this.graphInputs = ins;
        Set<String> outs = new HashSet<>();
        for (ValueInfoProto v : g.getOutputList()) outs.add(v.getName());
        this.graphOutputs = outs;
    }

    // ---------------------------------------------------------------- reading

    /** Reads a model file and the external data files beside it. */
    public static OnnxModel load(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot read the model file (" + e + ")", e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return parse(file.toString(), bytes, ExternalDataResolver.directory(dir));
    }

    /**
     * Parses model bytes. {@code source} names the file in error messages; {@code resolver} reads the
     * external data files that initializers point to, whose content is then inlined as raw_data (null:
     * the model must be self-contained).
     *
     * @throws ModelException if the bytes are not a (complete) ONNX model, there is no graph, the IR
     *     version is newer than 8, the default-domain opset is outside 10..21, an external data file is
     *     missing or too short, or two nodes share a name
     */
    public static OnnxModel parse(String source, byte[] bytes, ExternalDataResolver resolver) {
        ModelProto proto;
        try {
            proto = ModelProto.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new ModelException(source + ": not an ONNX model, or a truncated one (protobuf: "
                    + e.getMessage() + ")", e);
        }
        if (!proto.hasGraph()) {
            throw new ModelException(source + ": no graph in the model (is this an ONNX model file?)");
        }
        if (proto.getIrVersion() > MAX_IR_VERSION) {
            throw new ModelException(source + ": unsupported ONNX IR version " + proto.getIrVersion()
                    + ": quantcal reads IR versions 3.." + MAX_IR_VERSION
                    + " (re-export the model with an older exporter)");
        }
        if (proto.getIrVersion() < 3) {
            throw new ModelException(source + ": unsupported ONNX IR version " + proto.getIrVersion()
                    + ": quantcal reads IR versions 3.." + MAX_IR_VERSION);
        }
        long declared = declaredOpset(source, proto);
        // a model-local function's Conv/Gemm/MatMul nodes are layers too: calls expanded first, as ONNX Runtime does
        proto = FunctionInlining.inline(source, proto);
        if (declared < MIN_OPSET) proto = OldOpsetUpgrade.toTen(source, proto, declared);
        defaultOpset(source, proto);
        proto = ExternalData.inline(source, proto, resolver != null ? resolver : ExternalDataResolver.none(), Map.of());
        return new OnnxModel(source, named(source, proto));
    }

    /**
     * The model {@link #parts} gave: {@code skeleton} with the tensors it holds outside ({@code data}, by name, used
     * as they are, not copied) put back.
     */
    public static OnnxModel fromParts(String source, byte[] skeleton, Map<String, ByteString> data) {
        ModelProto proto;
        try {
            proto = ModelProto.parseFrom(skeleton);
        } catch (InvalidProtocolBufferException e) {
            throw new ModelException(source + ": not an ONNX model, or a truncated one (protobuf: " + e.getMessage() + ")", e);
        }
        return new OnnxModel(source, ExternalData.inline(source, proto, ExternalDataResolver.none(), data));
    }

    // ---------------------------------------------------------------- models larger than one protobuf message

    /** The external-data location of a tensor that {@link #parts} holds outside the skeleton. */
    static final String IN_MEMORY = "quantcal:in-memory";

    /**
     * Initializers of at least this many raw bytes go outside the skeleton of a large model: 64 KiB, or less when
     * {@link #largeModelBytes} is set below 1 MiB (tests).
     */
    private static int outsideBytes() {
        return (int) Math.min(64 * 1024, Math.max(1, largeModelBytes() / 16));
    }

    /**
     * From how many bytes of tensor data a model is large: held by {@link #parts} as a skeleton and its big tensors
     * apart, since a protobuf message serializes up to 2 GiB only. 1 GiB, or the system property
     * {@code quantcal.large-model-bytes} (tests take small models down the large path so).
     */
    public static long largeModelBytes() {
        return Long.getLong("quantcal.large-model-bytes", 1L << 30);
    }

    /** Bytes of tensor data in the initializers (their raw data or typed values). */
    public long dataBytes() {
        long d = dataBytes;
        if (d < 0) {
            d = 0;
            for (TensorProto t : proto.getGraph().getInitializerList()) d += t.getSerializedSize();
            dataBytes = d;
        }
        return d;
    }

    /** Whether this model is held as {@link #parts} (its tensor data above {@link #largeModelBytes}). */
    public boolean large() {
        return dataBytes() > largeModelBytes();
    }

    /**
     * Whether this model's tensor data pass 1/16 of {@link #largeModelBytes} (64 MiB by default): enough that a copy of
     * its weights counts, so local-mode tasks share the driver's model and ONNX Runtime gets it through a file with
     * mapped external data rather than as bytes. Every large model is medium.
     */
    public boolean medium() {
        return dataBytes() > largeModelBytes() / 16;
    }

    /**
     * A model as a skeleton (the model with each big initializer's data replaced by a reference, bytes of one
     * protobuf message) and those initializers ({@code outside}, with their data), so that a model of any size can be
     * broadcast, written and given to ONNX Runtime (whose sessions take such initializers as external initializers).
     * A model that is not {@link #large} is all skeleton.
     */
    public record Parts(byte[] skeleton, List<TensorProto> outside) {}

    public Parts parts() {
        if (!large()) return new Parts(proto.toByteArray(), List.of());
        Layout l = layout(IN_MEMORY);
        return new Parts(l.skeleton(), l.outside());
    }

    /** {@code t} without its data: a reference to {@code length} bytes at {@code offset} of {@code location}. */
    static TensorProto placeholder(TensorProto t, String location, long offset) {
        return t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL).clearExternalData()
                .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(location))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue(Long.toString(offset)))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("length")
                        .setValue(Long.toString(t.getRawData().size())))
                .build();
    }

    /**
     * This model as an ONNX file with external data: the model's bytes, whose big initializers refer to
     * {@code dataFile} (a name beside the model file), and the content of that file, in order ({@link #writeData}). A
     * model that is not {@link #large} has no data file (an empty list).
     */
    public record WithExternalData(byte[] model, List<ByteString> data) {
        /** Writes the data file's content to {@code out}. */
        public void writeData(java.io.OutputStream out) throws IOException {
            for (ByteString b : data) b.writeTo(out);
        }
    }

    public WithExternalData withExternalData(String dataFile) {
        if (!large()) return new WithExternalData(proto.toByteArray(), List.of());
        return withExternalDataAlways(dataFile);
    }

    /**
     * {@link #withExternalData} whatever the model's size: its initializers of 64 KiB and more in the data file (for
     * ONNX Runtime, which memory-maps them: no serialized copy of the weights on the heap).
     */
    public WithExternalData withExternalDataAlways(String dataFile) {
        Layout l = layout(dataFile);
        return new WithExternalData(l.skeleton(), l.data());
    }

    /** The skeleton whose big initializers refer to {@code location}, those initializers, and the data file's content. */
    private record Layout(byte[] skeleton, List<TensorProto> outside, List<ByteString> data) {}

    private Layout layout(String location) {
        GraphProto.Builder g = proto.getGraph().toBuilder();
        List<TensorProto> outside = new ArrayList<>();
        List<ByteString> data = new ArrayList<>();
        long offset = 0;
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (t.getRawData().size() < outsideBytes()) continue;
            // 4 KiB alignment, as onnx's own writer can (ONNX Runtime memory-maps aligned data)
            long aligned = (offset + 4095) / 4096 * 4096;
            if (aligned > offset) data.add(ByteString.copyFrom(new byte[(int) (aligned - offset)]));
            g.setInitializer(i, placeholder(t, location, aligned));
            outside.add(t);
            data.add(t.getRawData());
            offset = aligned + t.getRawData().size();
        }
        return new Layout(proto.toBuilder().setGraph(g).build().toByteArray(), List.copyOf(outside), List.copyOf(data));
    }

    private static long declaredOpset(String source, ModelProto proto) {
        for (OperatorSetIdProto o : proto.getOpsetImportList()) {
            if (Nodes.defaultDomain(o.getDomain())) return o.getVersion();
        }
        throw new ModelException(source + ": no opset import for the default ONNX domain");
    }

    /** The calls of model-local functions expanded on reading, per function name (see {@link FunctionInlining}). */
    public Map<String, Integer> inlinedFunctions() {
        return FunctionInlining.counts(proto);
    }

    /** The opset the file declared, when quantcal raised it to 10 on reading (see {@code OldOpsetUpgrade}); else 0. */
    public long upgradedFrom() {
        for (var e : proto.getMetadataPropsList()) {
            if (e.getKey().equals(OldOpsetUpgrade.UPGRADED_KEY)) return Long.parseLong(e.getValue());
        }
        return 0;
    }

    private static long defaultOpset(String source, ModelProto proto) {
        Long found = null;
        for (OperatorSetIdProto o : proto.getOpsetImportList()) {
            if (Nodes.defaultDomain(o.getDomain())) found = o.getVersion();
        }
        if (found == null) {
            throw new ModelException(source + ": no opset import for the default ONNX domain");
        }
        if (found < MIN_OPSET || found > MAX_OPSET) {
            throw new ModelException(source + ": unsupported opset " + found + ": quantcal supports "
                    + MIN_OPSET + ".." + MAX_OPSET + (found > MAX_OPSET ? " (" + MAX_OPSET + ": the newest the bundled"
                    + " ONNX Runtime runs)" : ""));
        }
        return found;
    }

    /** Gives unnamed nodes the name {@code <op>_<index>} and refuses duplicate names. */
    private static ModelProto named(String source, ModelProto proto) {
        GraphProto g = proto.getGraph();
        Map<String, Integer> explicit = new HashMap<>();
        boolean anyUnnamed = false;
        for (int i = 0; i < g.getNodeCount(); i++) {
            String name = g.getNode(i).getName();
            if (name.isEmpty()) {
                anyUnnamed = true;
                continue;
            }
            Integer other = explicit.putIfAbsent(name, i);
            if (other != null) {
                throw new ModelException(source + ": duplicate node name " + name + " (nodes #" + other + " and #" + i
                        + "); quantcal identifies nodes by name, so names must be unique");
            }
        }
        if (!anyUnnamed) return proto;
        Set<String> taken = new HashSet<>(explicit.keySet());
        GraphProto.Builder gb = g.toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (!n.getName().isEmpty()) continue;
            String base = n.getOpType() + "_" + i;
            String name = base;
            for (int k = 1; !taken.add(name); k++) name = base + "_" + k;
            gb.setNode(i, n.toBuilder().setName(name));
        }
        return proto.toBuilder().setGraph(gb).build();
    }

    // ---------------------------------------------------------------- rewriting

    /** The same model (source, opset, metadata) with another graph; unnamed new nodes get names. */
    public OnnxModel withGraph(GraphProto graph) {
        return new OnnxModel(source, named(source, proto.toBuilder().setGraph(graph).build()));
    }

    /** The same model under another name for error messages (its hash kept: the bytes are the same). */
    public OnnxModel withSource(String newSource) {
        OnnxModel m = new OnnxModel(newSource, proto);
        m.sha256 = sha256;
        m.dataBytes = dataBytes;
        return m;
    }

    /** Metadata key that lists the nodes left in FP32 on purpose, one name per line; it travels with the model. */
    public static final String EXCLUDED_KEY = "quantcal.excluded_nodes";

    /**
     * The same model with {@code nodes} left in FP32 on purpose: {@link #quantizableNodes()} skips them, everywhere
     * the model goes (the list is stored in the model's metadata, so it survives rewriting and serialization).
     */
    public OnnxModel withExcluded(Set<String> nodes) {
        ModelProto.Builder b = proto.toBuilder();
        for (int i = b.getMetadataPropsCount() - 1; i >= 0; i--) {
            if (b.getMetadataProps(i).getKey().equals(EXCLUDED_KEY)) b.removeMetadataProps(i);
        }
        if (!nodes.isEmpty()) {
            b.addMetadataProps(onnx.Onnx.StringStringEntryProto.newBuilder().setKey(EXCLUDED_KEY)
                    .setValue(String.join("\n", new java.util.TreeSet<>(nodes))));
        }
        return new OnnxModel(source, b.build());
    }

    /** The nodes left in FP32 on purpose (see {@link #withExcluded}). */
    public Set<String> excluded() {
        for (var e : proto.getMetadataPropsList()) {
            if (e.getKey().equals(EXCLUDED_KEY)) return Set.of(e.getValue().split("\n"));
        }
        return Set.of();
    }

    /** The same model with the default-domain opset import set to {@code version}. */
    public OnnxModel withOpset(long version) {
        if (version < MIN_OPSET || version > MAX_OPSET) {
            throw new IllegalArgumentException("opset " + version + " outside " + MIN_OPSET + ".." + MAX_OPSET);
        }
        ModelProto.Builder b = proto.toBuilder();
        for (int i = 0; i < b.getOpsetImportCount(); i++) {
            if (Nodes.defaultDomain(b.getOpsetImport(i).getDomain())) {
                b.setOpsetImport(i, b.getOpsetImport(i).toBuilder().setVersion(version));
            }
        }
        return new OnnxModel(source, b.build());
    }

    // ---------------------------------------------------------------- accessors

    /** The file the model came from, as given to {@link #parse} or {@link #load}. */
    public String source() {
        return source;
    }

    public ModelProto proto() {
        return proto;
    }

    public GraphProto graph() {
        return proto.getGraph();
    }

    public long irVersion() {
        return proto.getIrVersion();
    }

    /** The default-domain opset version. */
    public long opset() {
        return opset;
    }

    /** Graph inputs that are real inputs (not initializers listed as inputs, as IR < 4 models do). */
    public List<TensorInfo> inputs() {
        List<TensorInfo> out = new ArrayList<>();
        for (ValueInfoProto v : graph().getInputList()) {
            if (!initializers.containsKey(v.getName())) out.add(info(v));
        }
        return out;
    }

    public List<TensorInfo> outputs() {
        List<TensorInfo> out = new ArrayList<>();
        for (ValueInfoProto v : graph().getOutputList()) out.add(info(v));
        return out;
    }

    public List<NodeProto> nodes() {
        return graph().getNodeList();
    }

    /** The node called {@code name}. */
    public NodeProto node(String name) {
        NodeProto n = nodesByName.get(name);
        if (n == null) throw new ModelException(source + ": no node named " + name);
        return n;
    }

    /** The node that outputs {@code tensor}, or null for graph inputs, initializers and unknown names. */
    public NodeProto producer(String tensor) {
        return producers.get(tensor);
    }

    /** Why quantcal refuses a float64 model: its weights would lose bits as float32. */
    public static final String FLOAT32_ONLY =
            "quantcal quantizes float32 models (float16 and bfloat16 ones as float32); export this one in float32";

    /** The first float64 initializer of more than one value (a weight, not a scalar constant), or null. */
    public String float64Weight() {
        for (TensorProto t : proto.getGraph().getInitializerList()) {
            if (t.getDataType() == TensorProto.DataType.DOUBLE_VALUE && Tensors.count(Tensors.dims(t)) > 1) return t.getName();
        }
        return null;
    }

    /** Nodes that read {@code tensor}, in graph order, each once. */
    public List<NodeProto> consumers(String tensor) {
        return consumers.getOrDefault(tensor, List.of());
    }

    public boolean isInitializer(String name) {
        return initializers.containsKey(name);
    }

    public boolean isGraphInput(String name) {
        return graphInputs.contains(name);
    }

    public boolean isGraphOutput(String name) {
        return graphOutputs.contains(name);
    }

    /** Whether {@code tensor} is a value of the graph: a real input, an initializer or a node output. */
    public boolean hasTensor(String tensor) {
        return graphInputs.contains(tensor) || initializers.containsKey(tensor) || producers.containsKey(tensor);
    }

    public TensorProto initializer(String name) {
        TensorProto t = initializers.get(name);
        if (t == null) throw new ModelException(source + ": no initializer named " + name);
        return t;
    }

    /** Values of a FLOAT initializer (raw_data or float_data), row-major. */
    public float[] initializerFloats(String name) {
        return Tensors.floats(initializer(name), source + ": initializer " + name);
    }

    /** Values of an integer initializer (int8/uint8/int16/uint16/int32, int64 within int range). */
    public int[] initializerInts(String name) {
        return Tensors.ints(initializer(name), source + ": initializer " + name);
    }

    /**
     * Shape of {@code tensor}: an initializer's dims, or the shape a graph input, output or value_info
     * declares (-1 for symbolic dimensions).
     *
     * @throws ModelException if the model declares no shape for it
     */
    public long[] shape(String tensor) {
        TensorProto t = initializers.get(tensor);
        if (t != null) return Tensors.dims(t);
        ValueInfoProto v = declared.get(tensor);
        long[] s = v == null ? null : info(v).shape();
        if (s == null) {
            throw new ModelException(source + ": no shape known for tensor " + tensor
                    + " (not an initializer, and no graph input, output or value_info declares one)");
        }
        return s;
    }

    /**
     * Float values of a constant tensor (an initializer or the output of a Constant node), or null when
     * {@code tensor} is computed at run time.
     */
    /** The value of a one-element float constant (initializer or Constant node), else null. */
    Float scalarConstant(String tensor) {
        if (tensor == null) return null;
        if (initializers.containsKey(tensor) && initializer(tensor).getDataType() != TensorProto.DataType.FLOAT_VALUE) return null;
        float[] v = constantFloats(tensor);
        return v != null && v.length == 1 ? v[0] : null;
    }

    float[] constantFloats(String tensor) {
        if (initializers.containsKey(tensor)) return initializerFloats(tensor);
        NodeProto p = producers.get(tensor);
        if (p == null || !p.getOpType().equals("Constant") || !Nodes.defaultDomain(p.getDomain())) return null;
        for (AttributeProto a : p.getAttributeList()) {
            switch (a.getName()) {
                case "value":
                    return Tensors.floats(a.getT(), source + ": Constant " + p.getName() + " output " + tensor);
                case "value_float":
                    return new float[] {a.getF()};
                case "value_floats": {
                    float[] f = new float[a.getFloatsCount()];
                    for (int i = 0; i < f.length; i++) f[i] = a.getFloats(i);
                    return f;
                }
                default:
                    break;
            }
        }
        return null;
    }

    /** Conv, Gemm and MatMul-with-constant-weight nodes, in graph order (see {@link QuantizableNode}). */
    public List<QuantizableNode> quantizableNodes() {
        List<QuantizableNode> q = quantizable;
        if (q == null) {
            q = List.copyOf(QuantizableNodeFinder.find(this));
            quantizable = q;
        }
        return q;
    }

    /** The self-contained model (external data inlined), loadable by ONNX Runtime from bytes. */
    public byte[] toByteArray() {
        if (large()) {
            throw new IllegalStateException(source + ": a model of " + dataBytes() + " bytes of tensor data is handled"
                    + " through parts() or withExternalData(), not as one protobuf message");
        }
        return proto.toByteArray();
    }

    /** Writes {@link #toByteArray()}'s bytes to {@code out} without holding them all (not for a {@link #large} model). */
    public void writeTo(java.io.OutputStream out) throws IOException {
        if (large()) throw new IllegalStateException(source + ": a large model is written with its external data");
        proto.writeTo(out);
    }

    /**
     * SHA-256 (lower-case hex) of {@link #toByteArray()}: identifies the model as quantcal runs it
     * (node names assigned, external data inlined), which is what the session cache and the scale
     * table's model_sha256 need. Computed once.
     */
    public String sha256() {
        String s = sha256;
        if (s == null) {
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                if (!large()) {
                    // the serialized bytes streamed through the digest, not held: a 600 MB model's copy on the heap
                    // was the peak of a run's evaluate
                    try (java.security.DigestOutputStream d = new java.security.DigestOutputStream(
                            java.io.OutputStream.nullOutputStream(), md);
                         java.io.BufferedOutputStream out = new java.io.BufferedOutputStream(d, 1 << 16)) {
                        writeTo(out);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                } else {
                    // the skeleton, then each tensor held outside it: its name and its data
                    Parts p = parts();
                    md.update(p.skeleton());
                    for (TensorProto t : p.outside()) {
                        md.update(t.getName().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                        md.update(t.getRawData().asReadOnlyByteBuffer());
                    }
                }
                s = HexFormat.of().formatHex(md.digest());
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("every Java platform has SHA-256", e);
            }
            sha256 = s;
        }
        return s;
    }

    @Override
    public String toString() {
        return "OnnxModel[" + source + ", opset " + opset + ", " + graph().getNodeCount() + " nodes]";
    }

    private static TensorInfo info(ValueInfoProto v) {
        TypeProto t = v.getType();
        if (!t.hasTensorType()) return new TensorInfo(v.getName(), 0, null);
        TypeProto.Tensor tt = t.getTensorType();
        if (!tt.hasShape()) return new TensorInfo(v.getName(), tt.getElemType(), null);
        long[] s = new long[tt.getShape().getDimCount()];
        for (int i = 0; i < s.length; i++) {
            TensorShapeProto.Dimension d = tt.getShape().getDim(i);
            s[i] = d.hasDimValue() && d.getDimValue() > 0 ? d.getDimValue() : -1;
        }
        return new TensorInfo(v.getName(), tt.getElemType(), s);
    }

    // ---------------------------------------------------------------- serialization

    private Object writeReplace() {
        Parts p = parts();
        List<String> names = new ArrayList<>();
        List<byte[]> data = new ArrayList<>();
        for (TensorProto t : p.outside()) {
            names.add(t.getName());
            data.add(t.getRawData().toByteArray());
        }
        return new Serialized(source, p.skeleton(), names, data);
    }

    private void readObject(java.io.ObjectInputStream in) throws java.io.InvalidObjectException {
        throw new java.io.InvalidObjectException("OnnxModel is serialized through its bytes");
    }

    /** The serialized form: the file name, the model's skeleton and the tensors held outside it ({@link #parts}). */
    private record Serialized(String source, byte[] skeleton, List<String> names, List<byte[]> data) implements Serializable {
        private Object readResolve() {
            Map<String, ByteString> m = new HashMap<>();
            for (int i = 0; i < names.size(); i++) {
                m.put(names.get(i), org.nd4j.shade.protobuf.UnsafeByteOperations.unsafeWrap(data.get(i)));
            }
            return fromParts(source, skeleton, m);
        }
    }

    /** Reading external data into raw_data. */
    private static final class ExternalData {

        private ExternalData() {}

        static ModelProto inline(String source, ModelProto proto, ExternalDataResolver resolver,
                                 Map<String, ByteString> inMemory) {
            GraphProto g = proto.getGraph();
            GraphProto.Builder gb = null;
            for (int i = 0; i < g.getInitializerCount(); i++) {
                TensorProto t = g.getInitializer(i);
                if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) continue;
                if (gb == null) gb = g.toBuilder();
                gb.setInitializer(i, read(source, "initializer " + t.getName(), t, resolver, inMemory));
            }
            // Constant nodes may keep their value outside the model too
            for (int i = 0; i < g.getNodeCount(); i++) {
                NodeProto n = g.getNode(i);
                for (int a = 0; a < n.getAttributeCount(); a++) {
                    AttributeProto attr = n.getAttribute(a);
                    if (!attr.hasT() || attr.getT().getDataLocation() != TensorProto.DataLocation.EXTERNAL) continue;
                    if (gb == null) gb = g.toBuilder();
                    TensorProto t = read(source, "attribute " + attr.getName() + " of node " + n.getName(),
                            attr.getT(), resolver, inMemory);
                    gb.getNodeBuilder(i).getAttributeBuilder(a).setT(t);
                }
            }
            return gb == null ? proto : proto.toBuilder().setGraph(gb).build();
        }

        private static void checkLength(String source, String what, TensorProto t, long length, long expected) {
            if (expected >= 0 && length >= 0 && expected != length) {
                throw new ModelException(source + ": " + what + ": external data length " + length + " bytes, but "
                        + Tensors.typeName(t.getDataType()) + " of shape " + java.util.Arrays.toString(Tensors.dims(t))
                        + " needs " + expected);
            }
        }

        private static TensorProto read(String source, String what, TensorProto t, ExternalDataResolver resolver,
                                        Map<String, ByteString> inMemory) {
            String location = null;
            long offset = 0;
            long length = -1;
            for (StringStringEntryProto e : t.getExternalDataList()) {
                try {
                    switch (e.getKey()) {
                        case "location" -> location = e.getValue();
                        case "offset" -> offset = Long.parseLong(e.getValue());
                        case "length" -> length = Long.parseLong(e.getValue());
                        default -> { } // checksum and future keys: nothing to do
                    }
                } catch (NumberFormatException x) {
                    throw new ModelException(source + ": " + what + ": external data " + e.getKey()
                            + " is not a number: " + e.getValue());
                }
            }
            if (location == null || location.isEmpty()) {
                throw new ModelException(source + ": " + what + " is stored externally but names no location");
            }
            int size = Tensors.elementSize(t.getDataType());
            long expected = size < 0 ? -1 : size * Tensors.count(Tensors.dims(t));
            if (length < 0) length = expected; // -1 still when the type has no fixed size: to the file's end
            // a declared length that disagrees with the shape is refused before anything is read
            checkLength(source, what, t, length, expected);
            ByteString held = location.equals(IN_MEMORY) ? inMemory.get(t.getName()) : null;
            if (held != null) return t.toBuilder().clearExternalData().clearDataLocation().setRawData(held).build();
            byte[] data;
            try {
                // the tensor's range only: a data file may be larger than a Java array
                data = resolver.read(location, offset, length);
            } catch (IOException | RuntimeException e) {
                throw new ModelException(source + ": " + what + ": cannot read external data file " + location
                        + ": " + (e instanceof IOException && e.getMessage() != null ? e.getMessage() : e.toString()), e);
            }
            checkLength(source, what, t, data.length, expected);
            return t.toBuilder().clearExternalData().clearDataLocation()
                    .setRawData(org.nd4j.shade.protobuf.UnsafeByteOperations.unsafeWrap(data)).build();
        }
    }
}
