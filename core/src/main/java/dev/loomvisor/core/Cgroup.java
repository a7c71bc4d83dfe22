package dev.loomvisor.core;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A cgroup with the pids controller (kernel/cgroup/pids.c): {@code pids.max} (hierarchical: a fork must fit
 * under the limit of every ancestor), {@code pids.current} (tasks in this cgroup and its descendants) and the
 * {@code max} field of {@code pids.events} (forks refused because of a limit).
 *
 * <p>The root cgroup has no {@code pids.max} (always unlimited), as in the kernel.
 */
public final class Cgroup {

    /** The value written as "max" in pids.max. */
    public static final long PIDS_MAX_UNLIMITED = Long.MAX_VALUE;

    private final String name;
    private final Cgroup parent;
    private final List<Cgroup> children = new CopyOnWriteArrayList<>();
    private volatile long pidsMax = PIDS_MAX_UNLIMITED;
    private final AtomicLong pidsCurrent = new AtomicLong();
    /** pids.events "max": forks from this cgroup refused by a limit here or above (the pre-6.12 counting). */
    private final AtomicLong eventsMax = new AtomicLong();
    /** pids.events.local "max": forks refused because of this cgroup's own limit. */
    private final AtomicLong eventsMaxLocal = new AtomicLong();

    private Cgroup(String name, Cgroup parent) {
        this.name = name;
        this.parent = parent;
    }

    static Cgroup newRoot() {
        return new Cgroup("", null);
    }

    /** Creates a child cgroup (mkdir), unlimited until {@link #setPidsMax} is called. */
    public Cgroup mkdir(String childName) {
        if (childName == null || childName.isEmpty() || childName.indexOf('/') >= 0) {
            throw new IllegalArgumentException("bad cgroup name '" + childName + "'");
        }
        Cgroup child = new Cgroup(childName, this);
        children.add(child);
        return child;
    }

    public String name() {
        return name;
    }

    public Cgroup parent() {
        return parent;
    }

    public List<Cgroup> children() {
        return List.copyOf(children);
    }

    public boolean isRoot() {
        return parent == null;
    }

    /** The path from the root, "/" for the root itself, as /proc/self/cgroup shows it. */
    public String path() {
        if (parent == null) {
            return "/";
        }
        String p = parent.path();
        return (p.equals("/") ? "" : p) + "/" + name;
    }

    /** Writes pids.max; {@link #PIDS_MAX_UNLIMITED} means "max". Lowering it below current is allowed. */
    public void setPidsMax(long max) {
        if (isRoot()) {
            throw new UnsupportedOperationException("the root cgroup has no pids.max");
        }
        if (max < 0) {
            throw new IllegalArgumentException("pids.max " + max + " is negative");
        }
        pidsMax = max;
    }

    public long pidsMax() {
        return pidsMax;
    }

    public long pidsCurrent() {
        return pidsCurrent.get();
    }

    /** The "max" line of pids.events. */
    public long pidsEventsMax() {
        return eventsMax.get();
    }

    /** The "max" line of pids.events.local. */
    public long pidsEventsMaxLocal() {
        return eventsMaxLocal.get();
    }

    /**
     * pids_try_charge: add one up the hierarchy; if any level goes over its pids.max, revert the levels
     * charged so far and fail (reference section 1, step 8). Each level's test is on its own post-increment
     * value, so concurrent forks never overshoot a limit.
     */
    boolean tryChargePid() {
        for (Cgroup c = this; c != null; c = c.parent) {
            long now = c.pidsCurrent.incrementAndGet();
            if (now > c.pidsMax) {
                for (Cgroup r = this; r != c.parent; r = r.parent) {
                    r.pidsCurrent.decrementAndGet();
                }
                // pids_event: the forking cgroup counts the refusal, the limiting one counts it locally.
                eventsMax.incrementAndGet();
                c.eventsMaxLocal.incrementAndGet();
                return false;
            }
        }
        return true;
    }

    /** pids_charge: add one up the hierarchy without looking at the limits (task migration does this). */
    void chargePid() {
        for (Cgroup c = this; c != null; c = c.parent) {
            c.pidsCurrent.incrementAndGet();
        }
    }

    /** pids_uncharge: take one back up the hierarchy. */
    void unchargePid() {
        for (Cgroup c = this; c != null; c = c.parent) {
            if (c.pidsCurrent.decrementAndGet() < 0) {
                throw new IllegalStateException("pids.current of " + c.path() + " went negative");
            }
        }
    }

    @Override
    public String toString() {
        return "cgroup " + path();
    }
}
