package io.quantcal.kernels.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.quantcal.kernels.onnx.Graphs;
import io.quantcal.kernels.onnx.ModelException;
import io.quantcal.kernels.onnx.OnnxModel;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import onnx.Onnx.GraphProto;
import onnx.Onnx.TensorProto;

/**
 * An ONNX Runtime session over a model, optionally with intermediate tensors ("captures") added as
 * graph outputs so that one run returns the model's outputs and the captured activations.
 *
 * <p>{@link #run} is thread-safe (ONNX Runtime sessions are); {@link #close} waits for runs in flight.
 * Runners handed out by {@link SessionCache} (through a {@link SessionCache.Lease}) are shared: their
 * {@code close()} does nothing, the cache closes them on eviction, never while a lease holds them. Every session, shared or not, is known to {@link SessionCache}, whose
 * {@link SessionCache#shutdown} closes them all before the JVM exits.
 *
 * <p>Errors name the model file ({@link OnnxModel#source}) and, where ONNX Runtime names one, the node, on one
 * line.
 */
public final class ModelRunner implements AutoCloseable {

    private final String source;
    private final OrtSession session;
    private final OrtSession.SessionOptions sessionOptions;
    private final List<String> inputNames;
    private final List<String> outputNames;
    /** Every graph input: its element type, or null for an input quantcal cannot feed (see {@link #inputKinds}). */
    private final Map<String, ElementType> inputTypes;
    /** What each graph input is, for messages ("an int64 tensor"). */
    private final Map<String, String> inputKinds;
    private final OrtErrors errors;
    private final boolean shared;
    /** Tensors whose shape depends on the data (DataDependentShapes): never pinned, fetched on every run. */
    private final java.util.Set<String> dataDependent;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile boolean closed;

    private ModelRunner(String source, OrtSession session, OrtSession.SessionOptions options,
                        List<String> inputNames, List<String> outputNames, Map<String, ElementType> inputTypes,
                        Map<String, String> inputKinds, OrtErrors errors, boolean shared, java.util.Set<String> dataDependent) {
        this.source = source;
        this.session = session;
        this.sessionOptions = options;
        this.inputNames = inputNames;
        this.outputNames = outputNames;
        this.inputTypes = inputTypes;
        this.inputKinds = inputKinds;
        this.errors = errors;
        this.shared = shared;
        this.dataDependent = dataDependent;
    }

    /**
     * Whether ONNX Runtime loads {@code model}: a session without graph optimizations (the graph and type checks every
     * pass's session starts with), opened and closed on the calling thread, so that a model ONNX Runtime rejects (an
     * exporter's Sqrt of an int64, say) stops the run on the driver before any Spark work, rather than in every task at
     * once. A large model ({@link OnnxModel#large}) is not checked here: like a medium one, its session goes through a
     * temporary file of its tensors, which for gigabytes of weights costs seconds and disk; its first task reports the
     * same error.
     *
     * @return false when the model was too large to check
     * @throws ModelException naming the model's file and ONNX Runtime's reason, as {@link #open} does
     */
    public static boolean checkLoads(OnnxModel model) {
        if (model.large()) return false;
        RunnerOptions o = new RunnerOptions(1, 1, ai.onnxruntime.OrtSession.SessionOptions.OptLevel.NO_OPT);
        openSession(model, model, o, false).close();
        return true;
    }

    /** A runner returning only the model's own outputs. */
    public static ModelRunner open(OnnxModel model, RunnerOptions options) {
        return open(model, List.of(), options);
    }

    /**
     * A runner whose {@link #run} also returns {@code captureTensors} (float tensors produced by a node
     * or given as graph inputs), after the model's outputs.
     *
     * @throws ModelException naming a capture tensor the model does not produce, or if ONNX Runtime
     *     rejects the model
     */
    public static ModelRunner open(OnnxModel model, List<String> captureTensors, RunnerOptions options) {
        return open(model, captureTensors, options, false);
    }

    static ModelRunner open(OnnxModel model, List<String> captureTensors, RunnerOptions options, boolean shared) {
        OnnxModel withCaptures = withOutputs(model, captureTensors);
        return SessionCache.opened(model.source(), () -> openSession(model, withCaptures, options, shared));
    }

    private static ModelRunner openSession(OnnxModel model, OnnxModel withCaptures, RunnerOptions options,
                                           boolean shared) {
        OrtErrors errors = new OrtErrors(model);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        OrtSession session = null;
        try {
            so.setIntraOpNumThreads(options.intraOpThreads());
            so.setInterOpNumThreads(options.interOpThreads());
            so.setOptimizationLevel(options.optimization());
            // Idle ORT threads spin by default; inside a Spark executor they would burn the cores
            // other tasks are using.
            so.addConfigEntry("session.intra_op.allow_spinning", "0");
            so.addConfigEntry("session.inter_op.allow_spinning", "0");
            // a model larger than one protobuf message goes through a local file with external data, which ONNX
            // Runtime memory-maps (its packed weights are then its only copy); the files go once it has loaded them
            // and, unless timing asks for ONNX Runtime's packed copy (packLargeWeights), its kernels read the mapped
            // weights: one copy of a large model's weights in the page cache, not one more per open session
            if (withCaptures.large() && !options.packLargeWeights()
                    && !Boolean.getBoolean("quantcal.pack-large-weights")) {
                so.addConfigEntry("session.disable_prepacking", "1");
            }
            // a medium model (64 MiB of tensor data by default) goes through such a file as well: its serialized
            // bytes would be one more transient copy of its weights on the heap per session opened
            session = withCaptures.medium() ? LargeModelFiles.session(env, withCaptures, so)
                    : env.createSession(withCaptures.toByteArray(), so);
            List<String> outputs = new ArrayList<>();
            // the float outputs: a model output of another type (a detector's int64 labels) is computed, not returned
            java.util.Set<String> own = new java.util.HashSet<>();
            for (var o : model.outputs()) {
                if (o.elementType() != 0 && o.elementType() != onnx.Onnx.TensorProto.DataType.FLOAT_VALUE) own.add(o.name());
            }
            for (var o : withCaptures.outputs()) if (!own.contains(o.name())) outputs.add(o.name());
            // Real inputs in the model's order; initializers that IR < 4 models list as inputs keep their values.
            List<String> inputs = new ArrayList<>();
            for (var i : model.inputs()) inputs.add(i.name());
            Map<String, ElementType> types = new HashMap<>();
            Map<String, String> kinds = new HashMap<>();
            for (Map.Entry<String, NodeInfo> e : session.getInputInfo().entrySet()) {
                kinds.put(e.getKey(), kind(e.getValue()));
                if (e.getValue().getInfo() instanceof TensorInfo t) {
                    ElementType et = ElementType.ofOnnx(onnxNumber(t));
                    if (et != null) types.put(e.getKey(), et);
                }
            }
            return new ModelRunner(model.source(), session, so, List.copyOf(inputs), List.copyOf(outputs),
                    Map.copyOf(types), Map.copyOf(kinds), errors, shared,
                    java.util.Set.copyOf(io.quantcal.kernels.onnx.DataDependentShapes.of(model).keySet()));
        } catch (OrtException e) {
            if (session != null) {
                try {
                    session.close();
                } catch (OrtException ignored) {
                    // the load error is the one to report
                }
            }
            so.close();
            throw new ModelException(errors.message(model.source(), "cannot load the model", e), e);
        }
    }

    /**
     * The ONNX TensorProto.DataType number of an ONNX Runtime tensor type (ORT Java's {@code OnnxTensorType.value}
     * follows its own enum order, not ONNX's numbers: the names agree).
     */
    private static int onnxNumber(TensorInfo t) {
        String name = t.onnxType.name().replace("ONNX_TENSOR_ELEMENT_DATA_TYPE_", "");
        try {
            return TensorProto.DataType.valueOf(name).getNumber();
        } catch (IllegalArgumentException e) {
            return 0;
        }
    }

    /** What a graph input is ("a float32 tensor", "an int64 tensor", "not a tensor (...)"). */
    private static String kind(NodeInfo input) {
        if (input.getInfo() instanceof TensorInfo t) {
            String type = ElementType.onnxName(onnxNumber(t));
            return (type.startsWith("int") ? "an " : "a ") + type + " tensor";
        }
        return "not a tensor (" + input.getInfo() + ")";
    }

    /**
     * {@code model} with {@code tensors} added as float graph outputs (shape left open), after its own
     * outputs; tensors that already are outputs are not repeated.
     *
     * @throws ModelException naming a tensor that no node produces and no graph input provides
     */
    public static OnnxModel withOutputs(OnnxModel model, List<String> tensors) {
        if (tensors.isEmpty()) return model;
        LinkedHashSet<String> add = new LinkedHashSet<>();
        for (String t : tensors) {
            if (model.isGraphOutput(t)) continue;
            if (model.producer(t) == null && !model.isGraphInput(t)) {
                throw new ModelException(model.source() + ": cannot capture tensor " + t
                        + ": no node produces it and it is not a graph input");
            }
            add.add(t);
        }
        if (add.isEmpty()) return model;
        GraphProto.Builder g = model.graph().toBuilder();
        for (String t : add) g.addOutput(Graphs.valueOfAnyShape(t, TensorProto.DataType.FLOAT));
        return model.withGraph(g.build());
    }

    /** Real inputs, in the model's order. */
    public List<String> inputNames() {
        return inputNames;
    }

    /** What {@link #run} returns: the model's outputs, then the captured tensors. */
    public List<String> outputNames() {
        return outputNames;
    }

    /** Runs a batch of float inputs, keyed by the graph input name. */
    public Map<String, FloatTensor> run(Map<String, FloatTensor> inputs) {
        Map<String, InputTensor> typed = new LinkedHashMap<>();
        for (var e : inputs.entrySet()) typed.put(e.getKey(), InputTensor.of(e.getValue()));
        return runInputs(typed);
    }

    /**
     * Runs a batch; inputs of any supported element type, keyed by the graph input name.
     *
     * @throws ModelException naming the input when one is missing, unknown, or of another element type than the
     *     model's
     */
    public Map<String, FloatTensor> runInputs(Map<String, InputTensor> inputs) {
        checkInputs(inputs);
        lock.readLock().lock();
        try {
            if (closed) throw new IllegalStateException(source + ": the model runner is closed");
            return runOpen(inputs);
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * A batch held as ONNX Runtime tensors, fed as they are to every {@link #timeRun}: for timing the model itself.
     * {@link #runInputs} turns each heap array into a new ONNX Runtime tensor (a new direct buffer, zeroed and copied
     * into) and copies every output back to the heap, on every run: measured on this VM, 0.5–0.9 ms per run for a 256 KB
     * input and as much again for the output, several times the run of a small model (one 3×3 Conv of 16 channels on
     * 4×32×32, 0.25 ms in ONNX Runtime, 0.85 ms through {@link #runInputs}). Close it to release the tensors.
     */
    public final class Feed implements AutoCloseable {
        private final Map<String, OnnxTensor> tensors;

        private Feed(Map<String, OnnxTensor> tensors) {
            this.tensors = tensors;
        }

        private ModelRunner owner() {
            return ModelRunner.this;
        }

        @Override
        public void close() {
            for (OnnxTensor t : tensors.values()) t.close();
        }
    }

    /** {@code inputs} as a {@link Feed} of this runner (checked as {@link #runInputs} checks them). */
    public Feed feed(Map<String, InputTensor> inputs) {
        checkInputs(inputs);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
        try {
            for (var e : inputs.entrySet()) feeds.put(e.getKey(), e.getValue().toOnnx(env));
        } catch (OrtException e) {
            for (OnnxTensor t : feeds.values()) t.close();
            throw new ModelException(errors.message(source, "cannot create the input tensors", e), e);
        }
        return new Feed(feeds);
    }

    /**
     * One run of {@code feed}, its outputs released unread; the wall time of the run in nanoseconds.
     *
     * @throws IllegalArgumentException for a feed of another runner
     */
    public long timeRun(Feed feed) {
        if (feed.owner() != this) throw new IllegalArgumentException("a feed of another runner");
        lock.readLock().lock();
        try {
            if (closed) throw new IllegalStateException(source + ": the model runner is closed");
            long t0 = System.nanoTime();
            session.run(feed.tensors).close();
            return System.nanoTime() - t0;
        } catch (OrtException e) {
            throw new ModelException(errors.message(source, "run failed", e), e);
        } finally {
            lock.readLock().unlock();
        }
    }

    private void checkInputs(Map<String, InputTensor> inputs) {
        for (String name : inputs.keySet()) {
            if (!inputNames.contains(name)) {
                throw new ModelException(source + ": no graph input named " + name + "; inputs are " + inputNames);
            }
        }
        for (String name : inputNames) {
            if (!inputs.containsKey(name)) {
                throw new ModelException(source + ": graph input " + name + " not given; inputs are " + inputNames);
            }
            ElementType want = inputTypes.get(name);
            ElementType given = inputs.get(name).type();
            if (want != given) {
                throw new ModelException(source + ": graph input " + name + " is " + inputKinds.get(name) + ", given "
                        + (given.isInteger() ? "an " : "a ") + given + " tensor" + (want == null ? " (quantcal feeds float32, float64, int64, int32 and uint8 inputs)" : ""));
            }
        }
    }

    /**
     * Direct buffers that one caller at a time (a task, one thread) owns for {@link #runPinned}: one per captured
     * tensor, which ONNX Runtime writes a batch's values into and the caller reads in place, and one per graph input,
     * which the batch is copied into. Each is as large as the largest batch so far and a smaller batch uses its start,
     * so a task's batch sizes (one sample to measure, the budget's size, the partition's remainder) share one buffer.
     * Returned as new heap arrays, a capture costs a copy and garbage on every batch (a few MB per tensor even at 28×28,
     * each a humongous object for G1; hundreds of MB per batch at 224×224). Allocated afresh by every task, each buffer
     * is zeroed and faulted in page by page again: measured on the bundled 28×28 model's calibrate tasks, 4% of their
     * time for the captured tensors' buffers and 3% for the inputs' (ONNX Runtime copies a heap input into a new direct
     * buffer on every run). So {@link #close} hands them back to the runner ({@link ModelRunner#pinned}), which lends
     * them to the next task and drops them when its session closes.
     */
    public static final class PinnedBuffers implements AutoCloseable {
        private final ModelRunner owner;
        private final List<String> names;
        /** The captured tensors' shapes, learned by one run per signature of the inputs' shapes. */
        private final Map<String, Map<String, long[]>> shapes = new HashMap<>();
        private final Map<String, java.nio.ByteBuffer> outputBuffers = new HashMap<>();
        private final Map<String, java.nio.ByteBuffer> inputBuffers = new HashMap<>();
        /** ONNX Runtime tensors over the start of those buffers, per signature of the inputs' shapes. */
        private final Map<String, Map<String, OnnxTensor>> outputTensors = new HashMap<>();
        private final Map<String, Map<String, OnnxTensor>> inputTensors = new HashMap<>();
        /**
         * Captured tensors whose shape changed between runs of inputs of the same shape (their shape depends on the
         * data: a detector's boxes per image after NonMaxSuppression): fetched and copied on every run, not pinned.
         */
        private final java.util.Set<String> dynamic = new java.util.HashSet<>();

        private PinnedBuffers(ModelRunner owner, List<String> names) {
            this.owner = owner;
            this.names = names;
            for (String n : names) if (owner.dataDependent.contains(n)) dynamic.add(n);
        }

        /** Hands the buffers back to the runner for its next caller (or drops them if it is closed). */
        @Override
        public void close() {
            owner.giveBack(this);
        }

        /** Closes the ONNX Runtime tensors over the buffers and drops the buffers. */
        private void release() {
            closeAll(outputTensors);
            closeAll(inputTensors);
            outputBuffers.clear();
            inputBuffers.clear();
            shapes.clear();
        }

        private static void closeAll(Map<String, Map<String, OnnxTensor>> tensors) {
            for (Map<String, OnnxTensor> m : tensors.values()) for (OnnxTensor t : m.values()) t.close();
            tensors.clear();
        }

        /**
         * The direct buffer of {@code name} with room for {@code bytes}, grown if needed; growing one drops the tensors
         * over the old buffers of {@code tensors}' kind.
         */
        private java.nio.ByteBuffer room(Map<String, java.nio.ByteBuffer> buffers,
                                         Map<String, Map<String, OnnxTensor>> tensors, String name, long bytes) {
            java.nio.ByteBuffer b = buffers.get(name);
            if (b != null && b.capacity() >= bytes) return b;
            if (bytes > Integer.MAX_VALUE) {
                throw new MemoryException(owner.source + ": tensor " + name + " of one batch is " + bytes
                        + " bytes, more than a buffer holds (2 GiB); " + MemoryException.ADVICE, null);
            }
            closeAll(tensors);
            b = java.nio.ByteBuffer.allocateDirect((int) bytes).order(java.nio.ByteOrder.nativeOrder());
            buffers.put(name, b);
            return b;
        }

        /** The batch copied into the input buffers, as tensors over them. */
        private Map<String, OnnxTensor> feeds(OrtEnvironment env, Map<String, InputTensor> inputs, String signature)
                throws OrtException {
            for (var e : inputs.entrySet()) {
                InputTensor x = e.getValue();
                java.nio.ByteBuffer b = room(inputBuffers, inputTensors, e.getKey(), x.bytes()).duplicate()
                        .order(java.nio.ByteOrder.nativeOrder());
                switch (x.type()) {
                    case FLOAT -> b.asFloatBuffer().put((float[]) x.data());
                    case DOUBLE -> b.asDoubleBuffer().put((double[]) x.data());
                    case INT64 -> b.asLongBuffer().put((long[]) x.data());
                    case INT32 -> b.asIntBuffer().put((int[]) x.data());
                    case UINT8 -> b.put((byte[]) x.data());
                }
            }
            Map<String, OnnxTensor> feeds = inputTensors.get(signature);
            if (feeds == null) {
                feeds = new LinkedHashMap<>();
                for (var e : inputs.entrySet()) {
                    InputTensor x = e.getValue();
                    feeds.put(e.getKey(), OnnxTensor.createTensor(env, start(inputBuffers.get(e.getKey()), (int) x.bytes()),
                            x.shape(), x.onnxJavaType()));
                }
                inputTensors.put(signature, feeds);
            }
            return feeds;
        }

        /** Tensors over the output buffers for the captured tensors ONNX Runtime writes (not the graph inputs). */
        private Map<String, OnnxTensor> outputs(OrtEnvironment env, String signature, Map<String, long[]> shaped)
                throws OrtException {
            Map<String, OnnxTensor> outs = outputTensors.get(signature);
            if (outs == null) {
                outs = new LinkedHashMap<>();
                for (String name : names) {
                    if (owner.inputNames.contains(name) || dynamic.contains(name)) continue;
                    long[] shape = shaped.get(name);
                    int bytes = (int) (4 * elements(shape));
                    outs.put(name, OnnxTensor.createTensor(env, start(outputBuffers.get(name), bytes), shape, OnnxJavaType.FLOAT));
                }
                outputTensors.put(signature, outs);
            }
            return outs;
        }

        private static java.nio.ByteBuffer start(java.nio.ByteBuffer b, int bytes) {
            return b.slice(0, bytes).order(java.nio.ByteOrder.nativeOrder());
        }
    }

    /** Lanes of idle pinned buffers a runner keeps: one per task it runs at once, up to the machine's cores. */
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors());
    private final java.util.ArrayDeque<PinnedBuffers> idle = new java.util.ArrayDeque<>();

    /**
     * Buffers for {@link #runPinned} capturing these float32 tensors: idle ones an earlier caller gave back, or new
     * ones. The caller owns them until it closes them.
     */
    public PinnedBuffers pinned(List<String> names) {
        List<String> wanted = List.copyOf(new LinkedHashSet<>(names));
        synchronized (idle) {
            for (var it = idle.descendingIterator(); it.hasNext(); ) { // the last given back: the warmest in cache
                PinnedBuffers p = it.next();
                if (p.names.equals(wanted)) {
                    it.remove();
                    return p;
                }
            }
        }
        return new PinnedBuffers(this, wanted);
    }

    private void giveBack(PinnedBuffers p) {
        synchronized (idle) {
            if (!closed && !idle.contains(p)) {
                if (idle.size() >= MAX_IDLE) idle.removeFirst().release();
                idle.addLast(p);
                return;
            }
        }
        if (closed) p.release();
    }

    /** Idle pinned buffers the runner holds (for tests). */
    int idlePinned() {
        synchronized (idle) {
            return idle.size();
        }
    }

    private void releaseIdle() {
        synchronized (idle) {
            for (PinnedBuffers p : idle) p.release();
            idle.clear();
        }
    }

    /** "name:d0,d1,…;" per input: runs whose inputs have the same shapes capture tensors of the same shapes. */
    private static String signature(Map<String, InputTensor> inputs) {
        StringBuilder s = new StringBuilder();
        for (var e : inputs.entrySet()) {
            s.append(e.getKey()).append(':');
            for (long d : e.getValue().shape()) s.append(d).append(',');
            s.append(';');
        }
        return s.toString();
    }

    private static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /**
     * Runs a batch and hands each of {@code pinned}'s tensors to {@code visit} as a buffer of its float32 values, bytes
     * in native order (position 0, valid until the next run). The batch is copied into {@code pinned}'s input buffers.
     * The first run with given input shapes learns the captured tensors' shapes (and copies them once); later runs
     * write straight into {@code pinned}'s buffers. Only the captured tensors are fetched, not the model's outputs.
     * Returns the bytes handed over.
     */
    public long runPinned(Map<String, InputTensor> inputs, PinnedBuffers pinned,
                          java.util.function.BiConsumer<String, java.nio.ByteBuffer> visit) {
        if (pinned.owner != this) throw new IllegalArgumentException("pinned buffers of another runner");
        checkInputs(inputs);
        InputTensor any = inputs.values().iterator().next();
        long n = any.shape().length > 0 ? any.shape()[0] : 1;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        String signature = signature(inputs);
        lock.readLock().lock();
        try {
            if (closed) throw new IllegalStateException(source + ": the model runner is closed");
            Map<String, OnnxTensor> feeds = pinned.feeds(env, inputs, signature);
            Map<String, long[]> shaped = pinned.shapes.get(signature);
            if (shaped == null) {
                shaped = new LinkedHashMap<>();
                try (OrtSession.Result r = session.run(feeds, new LinkedHashSet<>(pinned.names))) {
                    for (String name : pinned.names) {
                        OnnxValue v = r.get(name).orElseThrow(() -> new ModelException(source + ": ONNX Runtime returned no " + name));
                        if (!(v instanceof OnnxTensor t) || t.getInfo().type != OnnxJavaType.FLOAT) {
                            throw new ModelException(source + ": output " + name + " is " + v.getInfo() + ", expected a float tensor");
                        }
                        FloatBuffer f = t.getFloatBuffer();
                        pinned.room(pinned.outputBuffers, pinned.outputTensors, name, 4L * f.remaining()).duplicate()
                                .order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer().put(f);
                        shaped.put(name, t.getInfo().getShape());
                    }
                }
                pinned.shapes.put(signature, shaped);
            } else {
                // ONNX Runtime does not write a captured graph input into a pinned buffer (it passes the input
                // through), nor can it write a tensor whose shape the data decide into a buffer of an earlier run's
                // shape: those are fetched and copied on every run
                shaped = new LinkedHashMap<>(shaped);
                while (true) {
                    java.util.Set<String> fetched = new LinkedHashSet<>();
                    for (String name : pinned.names) if (inputNames.contains(name) || pinned.dynamic.contains(name)) fetched.add(name);
                    try (OrtSession.Result r = session.run(feeds, fetched, pinned.outputs(env, signature, pinned.shapes.get(signature)))) {
                        for (String name : fetched) {
                            OnnxTensor t = (OnnxTensor) r.get(name).orElseThrow();
                            FloatBuffer f = t.getFloatBuffer();
                            pinned.room(pinned.outputBuffers, pinned.outputTensors, name, 4L * f.remaining()).duplicate()
                                    .order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer().put(f);
                            shaped.put(name, t.getInfo().getShape());
                        }
                        break;
                    } catch (OrtException e) {
                        java.util.regex.Matcher dd = DATA_DEPENDENT.matcher(String.valueOf(e.getMessage()));
                        if (!dd.find() || !pinned.names.contains(dd.group(1)) || !pinned.dynamic.add(dd.group(1))) throw e;
                        PinnedBuffers.closeAll(pinned.outputTensors); // rebuilt without it
                    }
                }
            }
            long bytes = 0;
            for (String name : pinned.names) {
                int size = (int) (4 * elements(shaped.get(name)));
                java.nio.ByteBuffer values = pinned.outputBuffers.get(name).slice(0, size).order(java.nio.ByteOrder.nativeOrder());
                bytes += size;
                visit.accept(name, values);
            }
            return bytes;
        } catch (OrtException e) {
            if (isAllocationFailure(e)) {
                throw new MemoryException(source + ": ONNX Runtime could not allocate memory for a batch of " + n
                        + " (" + firstLine(e.getMessage()) + "); " + MemoryException.ADVICE, e);
            }
            throw new ModelException(errors.message(source, "run failed", e), e);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** ONNX Runtime's words for a pre-allocated output of another shape than the run computes. */
    private static final java.util.regex.Pattern DATA_DEPENDENT = java.util.regex.Pattern.compile(
            "output OrtValue provided for output '([^']*)' of node .*? has shape (\\{[^}]*\\}) but the computed output"
                    + " shape for this run is (\\{[^}]*\\})");

    /** Runs a batch, each input keyed by its tensor's name. */
    public Map<String, FloatTensor> run(FloatTensor... inputs) {
        Map<String, FloatTensor> m = new LinkedHashMap<>();
        for (FloatTensor t : inputs) m.put(t.name(), t);
        return run(m);
    }

    private Map<String, FloatTensor> runOpen(Map<String, InputTensor> inputs) {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Map<String, OnnxTensor> feeds = new HashMap<>();
        try {
            for (var e : inputs.entrySet()) feeds.put(e.getKey(), e.getValue().toOnnx(env));
            try (OrtSession.Result r = session.run(feeds)) {
                Map<String, FloatTensor> out = new LinkedHashMap<>();
                for (String name : outputNames) {
                    OnnxValue v = r.get(name).orElseThrow(() -> new ModelException(source + ": ONNX Runtime returned no " + name));
                    out.put(name, toFloat(name, v));
                }
                return out;
            }
        } catch (OrtException e) {
            if (isAllocationFailure(e)) {
                long n = inputs.values().stream().findFirst().map(t -> t.shape().length > 0 ? t.shape()[0] : 1).orElse(1L);
                throw new MemoryException(source + ": ONNX Runtime could not allocate memory for a batch of " + n
                        + " (" + firstLine(e.getMessage()) + "); " + MemoryException.ADVICE, e);
            }
            throw new ModelException(errors.message(source, "run failed", e), e);
        } finally {
            for (OnnxTensor t : feeds.values()) t.close();
        }
    }

    /** ONNX Runtime's CPU allocator failing (its BFCArena or the system allocator), as opposed to a model error. */
    static boolean isAllocationFailure(OrtException e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        return m.contains("Failed to allocate memory") || m.contains("bad_alloc") || m.contains("Available memory of");
    }

    private static String firstLine(String m) {
        return m == null ? "" : m.lines().findFirst().orElse(m);
    }

    private FloatTensor toFloat(String name, OnnxValue v) {
        if (!(v instanceof OnnxTensor t) || t.getInfo().type != OnnxJavaType.FLOAT) {
            throw new ModelException(source + ": output " + name + " is " + v.getInfo()
                    + ", expected a float tensor");
        }
        TensorInfo info = t.getInfo();
        // getFloatBuffer() already copies the native tensor into a new heap buffer: take its array rather than copy
        // it a second time (a capture of a 224x224 model is hundreds of MB per batch)
        FloatBuffer b = t.getFloatBuffer();
        float[] data;
        if (b.hasArray() && b.arrayOffset() == 0 && b.position() == 0 && b.array().length == b.remaining()) {
            data = b.array();
        } else {
            data = new float[b.remaining()];
            b.get(data);
        }
        return new FloatTensor(name, info.getShape(), data);
    }

    /** Closes the session once runs in flight are done; does nothing for runners of the session cache. */
    @Override
    public void close() {
        if (!shared) closeNow();
    }

    void closeNow() {
        closeNow(Long.MAX_VALUE);
    }

    /**
     * Closes the session once the runs in flight are done, waiting at most {@code waitSeconds}; true when the
     * session is closed (now or before), false when a run was still in flight.
     */
    boolean closeNow(long waitSeconds) {
        boolean locked;
        try {
            locked = waitSeconds == Long.MAX_VALUE ? lockNow() : lock.writeLock().tryLock(waitSeconds, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        if (!locked) return false;
        try {
            if (closed) return true;
            closed = true;
            SessionCache.closed(this);
            releaseIdle();
            try {
                session.close();
            } catch (OrtException e) {
                throw new ModelException(source + ": closing the ONNX Runtime session failed: " + e.getMessage(), e);
            } finally {
                sessionOptions.close();
            }
            return true;
        } finally {
            lock.writeLock().unlock();
        }
    }

    private boolean lockNow() {
        lock.writeLock().lock();
        return true;
    }

    /** True once the session is closed. */
    boolean isClosed() {
        return closed;
    }

    /** The model file this runner's session was opened from, for messages. */
    String source() {
        return source;
    }
}
