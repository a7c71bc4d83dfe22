package dev.loomvisor.bench.cli;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress display on stderr, redrawn in place with a carriage return: model, repeat,
 * elapsed, current rate. Only on a terminal and never with {@code --quiet}; for runs under two seconds it
 * stays silent. Written here (a dozen lines) rather than with a progress-bar library, which would bring
 * a terminal library for one line of text.
 */
public final class Progress implements AutoCloseable {

    private static final long SHOW_AFTER_NANOS = 2_000_000_000L;
    private static final long REDRAW_NANOS = 200_000_000L;

    private final PrintStream err;
    private final boolean enabled;
    private final long startNanos = System.nanoTime();
    private long lastDraw;
    private int lastWidth;

    public Progress(PrintStream err, boolean enabled) {
        this.err = err;
        this.enabled = enabled;
    }

    /** Enabled when stderr is a terminal and output is not quiet. */
    public static Progress forTerminal(boolean quiet) {
        var console = System.console();
        return new Progress(System.err, !quiet && console != null && console.isTerminal());
    }

    public void update(String model, int repeat, int repeats, String rate) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (now - startNanos < SHOW_AFTER_NANOS || now - lastDraw < REDRAW_NANOS) {
            return;
        }
        lastDraw = now;
        String line = String.format(Locale.ROOT, "%s  repeat %d/%d  %.1fs  %s", model, repeat, repeats,
                (now - startNanos) / 1e9, rate);
        err.print("\r" + line + " ".repeat(Math.max(0, lastWidth - line.length())));
        lastWidth = line.length();
        err.flush();
    }

    /** Clears the line so that what is printed next starts clean; the display may be updated again. */
    public void clear() {
        if (enabled && lastWidth > 0) {
            err.print("\r" + " ".repeat(lastWidth) + "\r");
            err.flush();
            lastWidth = 0;
        }
    }

    @Override
    public void close() {
        clear();
    }
}
