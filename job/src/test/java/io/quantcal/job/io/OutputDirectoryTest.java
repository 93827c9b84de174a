package io.quantcal.job.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The output directory's promises, on the local file system and on one that fails chosen operations: overwrite
 * replaces only a quantcal output, replacing is all or nothing, one writer at a time, and what a killed run left is
 * cleaned by the next run.
 */
class OutputDirectoryTest {

    @TempDir
    Path tmp;

    final HadoopFiles files = new HadoopFiles(new Configuration());
    final List<String> notes = new ArrayList<>();

    @AfterEach
    void resetFaults() throws IOException {
        FaultyFileSystem.reset();
        // make every test directory deletable again for @TempDir
        try (Stream<Path> s = Files.walk(tmp)) {
            for (Path p : s.toList()) if (Files.isDirectory(p)) p.toFile().setWritable(true, false);
        }
    }

    /** A finished quantcal output holding run.json and one data file with {@code content}. */
    Path quantcalOutput(Path dir, String content) throws IOException {
        Files.createDirectories(dir.resolve("scale_table"));
        Files.writeString(dir.resolve("scale_table/part-0"), content);
        Files.writeString(dir.resolve("run.json"), "{\"run_id\": \"old\", \"model_sha256\": \"ab\"}\n");
        return dir;
    }

    OutputDirectory begin(HadoopFiles f, String path, boolean overwrite) {
        return OutputDirectory.begin(f, path, overwrite, "fixed-run-id", notes::add);
    }

    void write(OutputDirectory o, String content) {
        o.files().writeText(o.resolve("run.json"), "{\"run_id\": \"new\", \"model_sha256\": \"cd\"}\n");
        o.files().writeText(o.resolve("scale_table/part-0"), content);
    }

    List<String> siblings(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void commitMovesTheNewOutputInAndLeavesNothingBeside() throws IOException {
        Path out = tmp.resolve("out");
        OutputDirectory o = begin(files, out.toString(), false);
        write(o, "new");
        o.commit();
        assertEquals("new", Files.readString(out.resolve("scale_table/part-0")));
        assertEquals(List.of("out"), siblings(tmp), "no lock, temporary or old directory left");
    }

    @Test
    void overwriteReplacesOnlyAQuantcalOutput() throws IOException {
        Path file = tmp.resolve("report.csv");
        Files.writeString(file, "a,b\n1,2\n");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> begin(files, file.toString(), true));
        assertTrue(e.getMessage().contains("is a regular file (8 bytes), not a quantcal output"), e.getMessage());
        assertEquals("a,b\n1,2\n", Files.readString(file));

        Path other = tmp.resolve("photos");
        Files.createDirectories(other.resolve("2024"));
        Files.writeString(other.resolve("a.png"), "x");
        Files.writeString(other.resolve("run.json"), "not json");
        e = assertThrows(IllegalStateException.class, () -> begin(files, other.toString(), true));
        assertTrue(e.getMessage().contains("is a directory that is not a quantcal output (no valid run.json): it holds 3"
                + " entries (2024/, a.png, run.json)"), e.getMessage());
        assertEquals("x", Files.readString(other.resolve("a.png")));

        Path old = quantcalOutput(tmp.resolve("old"), "old");
        e = assertThrows(IllegalStateException.class, () -> begin(files, old.toString(), false));
        assertTrue(e.getMessage().contains("already exists (set quantcal.output.overwrite = true"), e.getMessage());

        OutputDirectory o = begin(files, old.toString(), true);
        write(o, "new");
        o.commit();
        assertEquals("new", Files.readString(old.resolve("scale_table/part-0")));
        assertEquals(List.of("old", "photos", "report.csv"), siblings(tmp));
    }

    @Test
    void aFailedMoveAsidePutsNothingInPlaceAndKeepsTheOldOutput() throws IOException {
        HadoopFiles faulty = new HadoopFiles(FaultyFileSystem.conf());
        Path old = quantcalOutput(tmp.resolve("out"), "old");
        OutputDirectory o = begin(faulty, "faulty://" + old, true);
        write(o, "new");
        FaultyFileSystem.fail("rename", "/out");
        IllegalStateException e = assertThrows(IllegalStateException.class, o::commit);
        assertTrue(e.getMessage().contains("step 'move the old output aside to"), e.getMessage());
        assertTrue(e.getMessage().contains("injected rename failure"), e.getMessage());
        assertEquals("old", Files.readString(old.resolve("scale_table/part-0")));
        assertEquals(List.of("out"), siblings(tmp), "temporary directory and lock removed");
    }

    @Test
    void aFailedMoveInPutsTheOldOutputBackWhole() throws IOException {
        HadoopFiles faulty = new HadoopFiles(FaultyFileSystem.conf());
        Path old = quantcalOutput(tmp.resolve("out"), "old");
        OutputDirectory o = begin(faulty, "faulty://" + old, true);
        write(o, "new");
        FaultyFileSystem.fail("rename", ".out.tmp-");
        IllegalStateException e = assertThrows(IllegalStateException.class, o::commit);
        assertTrue(e.getMessage().contains("step 'move the new output in from"), e.getMessage());
        assertTrue(e.getMessage().contains("the old output was put back whole"), e.getMessage());
        assertEquals("old", Files.readString(old.resolve("scale_table/part-0")));
        assertTrue(Files.exists(old.resolve("run.json")));
        assertEquals(List.of("out"), siblings(tmp));
    }

    @Test
    void anOldOutputThatCannotBeRemovedIsNamedAndTheNextRunRemovesIt() throws IOException {
        HadoopFiles faulty = new HadoopFiles(FaultyFileSystem.conf());
        Path old = quantcalOutput(tmp.resolve("out"), "old");
        OutputDirectory o = begin(faulty, "faulty://" + old, true);
        write(o, "new");
        FaultyFileSystem.fail("delete", ".out.old-");
        IllegalStateException e = assertThrows(IllegalStateException.class, o::commit);
        assertTrue(e.getMessage().contains("is complete, but step 'remove the old output moved aside to"), e.getMessage());
        assertEquals("new", Files.readString(old.resolve("scale_table/part-0")));
        FaultyFileSystem.reset();
        begin(files, old.toString(), true).abort();
        assertTrue(notes.stream().anyMatch(n -> n.contains("the previous output an interrupted run had replaced")), notes.toString());
        assertEquals(List.of("out"), siblings(tmp));
        assertEquals("new", Files.readString(old.resolve("scale_table/part-0")));
    }

    @Test
    void anOldOutputWithContentsThatCannotBeDeletedIsRefusedBeforeAnyWork() throws IOException {
        Path old = quantcalOutput(tmp.resolve("out"), "old");
        old.resolve("scale_table").toFile().setWritable(false, false);
        RuntimeException r = assertThrows(RuntimeException.class, () -> begin(files, old.toString(), true));
        assertTrue(r.getMessage().contains(old.resolve("scale_table") + " is not writable"), r.getMessage());
        assertTrue(r.getMessage().contains("permission denied"), r.getMessage());
        assertEquals("old", Files.readString(old.resolve("scale_table/part-0")));
        assertEquals(List.of("out"), siblings(tmp), "no temporary directory, no lock");
    }

    @Test
    void fileSystemErrorsNameThePathAndTheCause() throws IOException {
        Path ro = Files.createDirectories(tmp.resolve("readonly"));
        Files.setPosixFilePermissions(ro, PosixFilePermissions.fromString("r-xr-xr-x"));
        RuntimeException e = assertThrows(RuntimeException.class, () -> begin(files, ro.resolve("out").toString(), false));
        assertTrue(e.getMessage().contains("permission denied: " ), e.getMessage());
        assertTrue(e.getMessage().contains(ro + " is not writable"), e.getMessage());
        assertTrue(e.getMessage().contains("mode r-xr-xr-x"), e.getMessage());

        Path file = Files.writeString(tmp.resolve("afile"), "x");
        e = assertThrows(RuntimeException.class, () -> begin(files, file.resolve("sub/out").toString(), false));
        assertTrue(e.getMessage().contains("cannot create directory"), e.getMessage());
        assertTrue(e.getMessage().contains(file + " is a regular file, not a directory"), e.getMessage());
        assertFalse(e.getMessage().contains("mkdirs returned false"), e.getMessage());

        e = assertThrows(RuntimeException.class, () -> begin(files, "/", true));
        assertTrue(e.getMessage().contains("is the root of its file system"), e.getMessage());
    }

    @Test
    void oneWriterAtATimeAndEachRunHasItsOwnTemporaryDirectory() throws Exception {
        Path out = tmp.resolve("out");
        OutputDirectory a = begin(files, out.toString(), true);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> begin(files, out.toString(), true));
        assertTrue(e.getMessage().contains("output is being written by another run fixed-run-id (pid "
                + ProcessHandle.current().pid()), e.getMessage());
        write(a, "a");
        a.commit();
        OutputDirectory b = begin(files, out.toString(), true);
        OutputDirectory c;
        assertNotEquals(a.tempPath(), b.tempPath(), "a fixed run id still gives each run its own temporary directory");
        b.abort();
        assertEquals("a", Files.readString(out.resolve("scale_table/part-0")));

        // many runs starting at once: exactly one gets the output
        int n = 6;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<OutputDirectory>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            fs.add(pool.submit(() -> {
                go.await();
                return begin(files, out.toString(), true);
            }));
        }
        go.countDown();
        List<OutputDirectory> won = new ArrayList<>();
        int lost = 0;
        for (Future<OutputDirectory> f : fs) {
            try {
                won.add(f.get());
            } catch (java.util.concurrent.ExecutionException x) {
                assertTrue(x.getCause().getMessage().contains("output is being written by another run"), x.getCause().getMessage());
                lost++;
            }
        }
        pool.shutdown();
        assertEquals(1, won.size(), "exactly one run wins");
        assertEquals(n - 1, lost);
        c = won.get(0);
        write(c, "c");
        c.commit();
        assertEquals("c", Files.readString(out.resolve("scale_table/part-0")));
        assertEquals(List.of("out"), siblings(tmp));
    }

    /** The pid of a process that has ended. */
    static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        return p.pid();
    }

    void lock(Path parent, String name, String host, long pid, String start) throws IOException {
        Files.writeString(parent.resolve("." + name + ".quantcal-lock"), "{\"run_id\":\"killed\",\"host\":\"" + host
                + "\",\"pid\":" + pid + ",\"process_start\":\"" + start + "\",\"token\":\"t\"}", StandardCharsets.UTF_8);
    }

    @Test
    void whatAKilledRunLeftIsRemovedByTheNextRun() throws Exception {
        Path out = quantcalOutput(tmp.resolve("out"), "old");
        Files.createDirectories(tmp.resolve(".out.tmp-killed-1234/scale_table"));
        lock(tmp, "out", OutputLock.hostName(), deadPid(), "2026-01-01T00:00:00Z");
        OutputDirectory o = begin(files, out.toString(), true);
        assertTrue(notes.stream().anyMatch(n -> n.contains("removed the lock of run killed")), notes.toString());
        assertTrue(notes.stream().anyMatch(n -> n.contains(".out.tmp-killed-1234, the temporary directory of an interrupted run")),
                notes.toString());
        write(o, "new");
        o.commit();
        assertEquals(List.of("out"), siblings(tmp));

        // killed between moving the old output aside and moving the new one in: the old one comes back
        Files.move(out, tmp.resolve(".out.old-killed-99"));
        Files.createDirectories(tmp.resolve(".out.tmp-killed-99"));
        notes.clear();
        begin(files, out.toString(), true).abort();
        assertTrue(notes.stream().anyMatch(n -> n.contains("put back the previous output")), notes.toString());
        assertEquals("new", Files.readString(out.resolve("scale_table/part-0")));
        assertEquals(List.of("out"), siblings(tmp));
    }

    @Test
    void aLiveRunsLockIsNamedAndLeftAlone() throws Exception {
        Path out = tmp.resolve("out");
        Process sleeper = new ProcessBuilder("sleep", "60").start();
        try {
            lock(tmp, "out", OutputLock.hostName(), sleeper.pid(), OutputLock.start(sleeper.toHandle()));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> begin(files, out.toString(), true));
            assertTrue(e.getMessage().contains("another run killed (pid " + sleeper.pid()), e.getMessage());
            assertTrue(Files.exists(tmp.resolve(".out.quantcal-lock")));
        } finally {
            sleeper.destroy();
        }
        // another host: live while its heartbeat is recent, gone once it is older than the stale limit
        lock(tmp, "out", "elsewhere.example", 1, "x");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> begin(files, out.toString(), true));
        assertTrue(e.getMessage().contains("pid 1 on elsewhere.example"), e.getMessage());
        Files.setLastModifiedTime(tmp.resolve(".out.quantcal-lock"),
                java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - OutputLock.STALE_MS - 60_000));
        begin(files, out.toString(), true).abort();
        assertEquals(List.of(), siblings(tmp));
    }
}
