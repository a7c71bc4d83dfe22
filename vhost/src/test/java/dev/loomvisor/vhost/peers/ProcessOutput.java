package dev.loomvisor.vhost.peers;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Everything a peer process prints (stdout and stderr merged), collected by a reader thread so the peer
 * never blocks on a full pipe, and searchable with bounded waits. Character-based, not line-based:
 * testpmd's prompt ends without a newline.
 */
public final class ProcessOutput {

    /** Keeps at most this much; a chatty peer must not fill the test's heap. */
    private static final int MAX_CHARS = 4 << 20;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition grew = lock.newCondition();
    private final StringBuilder text = new StringBuilder();
    /** Characters dropped from the front to stay under MAX_CHARS (positions stay absolute). */
    private long dropped;
    private boolean ended;

    /** Starts a daemon thread that reads {@code in} to its end. */
    public ProcessOutput(InputStream in, String name) {
        Thread t = Thread.ofPlatform().daemon().name(name + "-output").unstarted(() -> pump(in));
        t.start();
    }

    private void pump(InputStream in) {
        char[] chunk = new char[8192];
        try (Reader r = new InputStreamReader(in, StandardCharsets.UTF_8)) {
            int n;
            while ((n = r.read(chunk)) > 0) {
                lock.lock();
                try {
                    text.append(chunk, 0, n);
                    if (text.length() > MAX_CHARS) {
                        int cut = text.length() - MAX_CHARS / 2;
                        text.delete(0, cut);
                        dropped += cut;
                    }
                    grew.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        } catch (IOException ignored) {
            // The process went away; what it printed so far stays readable.
        } finally {
            lock.lock();
            try {
                ended = true;
                grew.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Absolute position of the end of what was printed so far. */
    public long position() {
        lock.lock();
        try {
            return dropped + text.length();
        } finally {
            lock.unlock();
        }
    }

    /** Everything kept so far. */
    public String text() {
        lock.lock();
        try {
            return text.toString();
        } finally {
            lock.unlock();
        }
    }

    /** What was printed between absolute positions {@code from} and {@code to} (as far as still kept). */
    public String between(long from, long to) {
        lock.lock();
        try {
            int a = (int) Math.min(text.length(), Math.max(0, from - dropped));
            int b = (int) Math.min(text.length(), Math.max(a, to - dropped));
            return text.substring(a, b);
        } finally {
            lock.unlock();
        }
    }

    /** The last {@code n} characters, for failure messages. */
    public String tail(int n) {
        lock.lock();
        try {
            return text.substring(Math.max(0, text.length() - n));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits until {@code pattern} matches in what was printed after absolute position {@code from}.
     *
     * @return the match, or null when the timeout passed or the output ended first
     */
    public MatchResultAt await(long from, Pattern pattern, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
            while (true) {
                int start = (int) Math.max(0, from - dropped);
                Matcher m = pattern.matcher(text);
                if (start <= text.length() && m.find(start)) {
                    return new MatchResultAt(m.toMatchResult(), dropped + m.end());
                }
                long left = deadline - System.nanoTime();
                if (ended || left <= 0) {
                    return null;
                }
                grew.awaitNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
            }
        } finally {
            lock.unlock();
        }
    }

    /** A match and the absolute position just after it. */
    public record MatchResultAt(java.util.regex.MatchResult match, long end) {
    }
}
