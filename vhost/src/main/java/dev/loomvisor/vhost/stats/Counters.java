package dev.loomvisor.vhost.stats;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A fixed set of 64-bit counters named by an enum, readable from any thread while traffic runs.
 *
 * <p>Two ways to count: {@link #addOrdered} for a counter with one writer at a time (the worker serving a
 * ring; a plain read-add and an ordered store, no atomic instruction on the hot path), and {@link #add}
 * for a counter that several threads bump. Hot paths add once per batch, not per frame.
 */
public final class Counters<E extends Enum<E>> {

    private final Class<E> type;
    private final E[] names;
    private final AtomicLongArray values;

    public Counters(Class<E> type) {
        this.type = type;
        this.names = type.getEnumConstants();
        this.values = new AtomicLongArray(names.length);
    }

    /** Adds from the counter's only writer (release store: readers see whole values, never torn). */
    public void addOrdered(E counter, long n) {
        int i = counter.ordinal();
        values.lazySet(i, values.get(i) + n);
    }

    /** Adds from any thread. */
    public void add(E counter, long n) {
        values.getAndAdd(counter.ordinal(), n);
    }

    public long get(E counter) {
        return values.get(counter.ordinal());
    }

    /** Sum of the given counters (e.g. drops of every reason). */
    @SafeVarargs
    public final long sum(E... counters) {
        long s = 0;
        for (E c : counters) {
            s += get(c);
        }
        return s;
    }

    /** A copy of every counter, for reports (allocates; not for hot paths). */
    public Map<E, Long> snapshot() {
        Map<E, Long> m = new EnumMap<>(type);
        for (E e : names) {
            m.put(e, values.get(e.ordinal()));
        }
        return m;
    }

    @Override
    public String toString() {
        return snapshot().toString();
    }
}
