package dev.loomvisor.bench.journal;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One {@link JournalCrashChild} JVM appending to a journal, with its standard output read on a thread of
 * its own (so several can write at once) and a SIGKILL at the caller's moment. Lines are facts: the child
 * prints each after its append returned.
 */
final class CrashingWriter {

    private final Process process;
    private final Path stderr;
    private final Thread reader;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition more = lock.newCondition();
    private final List<String> lines = new ArrayList<>();
    private final long startNanos = System.nanoTime();
    private long openNanos = -1;
    private long firstAppendNanos = -1;
    private boolean eof;

    CrashingWriter(Path journal, long seed, Path stderr) throws IOException {
        this.stderr = stderr;
        String javaBin = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin);
        // The same JVM flags as this test JVM (Chronicle's exports and opens), minus debugger agents.
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib") && !a.startsWith("-javaagent")) {
                cmd.add(a);
            }
        }
        // A short-lived writer: the quick compiler and the serial collector start fastest (start-up is most
        // of a kill cycle's time).
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(JournalCrashChild.class.getName());
        cmd.add(journal.toString());
        cmd.add(Long.toString(seed));
        // Chronicle's warnings (e.g. about a lock a killed writer held) go to a file, apart from the lines.
        process = new ProcessBuilder(cmd).redirectError(stderr.toFile()).start();
        reader = Thread.ofPlatform().daemon().name("crash-child-out").start(this::read);
    }

    private void read() {
        try (var in = new BufferedReader(new InputStreamReader(process.getInputStream()))) {
            String l;
            while ((l = in.readLine()) != null) {
                lock.lock();
                try {
                    if (l.equals("open")) {
                        openNanos = System.nanoTime();
                        continue;
                    }
                    if (firstAppendNanos < 0) {
                        firstAppendNanos = System.nanoTime();
                    }
                    lines.add(l);
                    more.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        } catch (IOException e) {
            // the pipe broke with the process: what was read is what there is
        } finally {
            lock.lock();
            try {
                eof = true;
                more.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Waits until the child printed {@code n} lines (true), ended, or {@code timeout} passed (false). */
    boolean awaitLines(int n, Duration timeout) throws InterruptedException {
        long left = timeout.toNanos();
        lock.lock();
        try {
            while (lines.size() < n && !eof) {
                if (left <= 0) {
                    return false;
                }
                left = more.awaitNanos(left);
            }
            return lines.size() >= n;
        } finally {
            lock.unlock();
        }
    }

    /**
     * SIGKILL (through the process handle: {@link Process#destroyForcibly} would also close the pipe, losing
     * the lines printed before the death): no shutdown hook, no close, maybe mid-document. Waits for the
     * death and for the last line.
     */
    void kill() throws InterruptedException {
        process.toHandle().destroyForcibly();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("child " + process.pid() + " did not die");
        }
        reader.join(TimeUnit.SECONDS.toMillis(30));
    }

    /** Every line read (after {@link #kill}: all the child printed). */
    List<String> lines() {
        lock.lock();
        try {
            return List.copyOf(lines);
        } finally {
            lock.unlock();
        }
    }

    /** Milliseconds from the start of the JVM to its journal being open, or -1. */
    long openMillis() {
        lock.lock();
        try {
            return openNanos < 0 ? -1 : TimeUnit.NANOSECONDS.toMillis(openNanos - startNanos);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Milliseconds from the journal being open to the first append returning (a lock or a half-written
     * document left by a killed writer is what can make it wait), or -1.
     */
    long firstAppendMillis() {
        lock.lock();
        try {
            return firstAppendNanos < 0 || openNanos < 0 ? -1
                    : TimeUnit.NANOSECONDS.toMillis(firstAppendNanos - openNanos);
        } finally {
            lock.unlock();
        }
    }

    boolean alive() {
        return process.isAlive();
    }

    String stderr() {
        try {
            return Files.exists(stderr) ? Files.readString(stderr) : "";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
