package dev.loomvisor.core.timer;

import dev.loomvisor.core.Notifier;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * {@code hrtimer_clock_base}: one clock thread serving many {@link Hrtimer}s. Arming a timer puts it (once)
 * in a lock-free many-to-one inbox; the clock thread moves inbox entries into its {@link TimerQueue}, fires
 * what is due and sleeps until the earliest expiry, or without a timeout while no timer is armed: an idle
 * base costs nothing. An arm earlier than the clock thread's planned wake-up unparks it (as hrtimer_start
 * reprograms the clock event device when the new timer becomes the first).
 *
 * <p>Slack (hrtimer_start_range_ns): each timer may fire up to the base's slack after its expiry, never before.
 * The clock thread sleeps until the latest expiry that lies within the slack of the first one and fires that
 * whole group in one pass, so senders whose times lie close together cost one wake-up of the clock (and
 * one burst of wake-ups of their threads) instead of one each; a timer with no neighbour in its slack fires
 * on time. Linux gives a normal thread's timed sleep 50 us of slack for the same reason.
 *
 * <p>Why a heap and not a timing wheel: the clock thread must know its next expiry to sleep until exactly
 * then; a wheel only knows its next tick, so with timers armed it wakes every tick whether one is due or not.
 * The kernel keeps hrtimers in a timerqueue (an rbtree) for the same reason.
 */
public final class HrtimerBase implements AutoCloseable {

    /**
     * The slack pacing clocks take unless told otherwise: Linux's default timer slack for a normal thread
     * (50 us), what a guest's own timed sleep gets.
     */
    public static final long DEFAULT_SLACK_NANOS = 50_000;

    /** Timers one base takes by default. */
    public static final int DEFAULT_CAPACITY = 1 << 16;

    /** Published by the clock thread: awake (arms need not wake it). */
    private static final long AWAKE = -1;
    /** Published by the clock thread: asleep with no timer armed. */
    private static final long FOREVER = Long.MAX_VALUE;
    /** The latest expiry a timer word holds (146 years after the epoch). */
    private static final long MAX_REL = (1L << 62) - 1;

    private final long epoch = System.nanoTime();
    private final ManyToOneConcurrentArrayQueue<Hrtimer> inbox;
    private final TimerQueue queue;
    private final AtomicInteger timers = new AtomicInteger();
    private final int capacity;
    private final long slackNanos;
    private final Thread clock;
    /** When the clock thread will look next, relative to the epoch; {@link #AWAKE} while it works. */
    private volatile long sleepUntil = AWAKE;
    private volatile int armed;
    private volatile boolean closing;
    private volatile boolean slackSet;
    /** Clock passes that fired at least one timer (single writer: the clock thread). */
    private volatile long expiryPasses;

    public HrtimerBase(String name) {
        this(name, DEFAULT_CAPACITY);
    }

    /** A base for up to {@code capacity} timers, with a started clock thread called {@code name}. */
    public HrtimerBase(String name, int capacity) {
        this(name, capacity, 0);
    }

    /**
     * A base whose timers may fire up to {@code slackNanos} late, as hrtimer_start_range_ns allows: the clock
     * thread fires the timers whose expiries lie within the slack of the first in one wake-up (see the class
     * comment). Never early.
     */
    public HrtimerBase(String name, int capacity, long slackNanos) {
        if (capacity < 1 || slackNanos < 0) {
            throw new IllegalArgumentException("capacity " + capacity + ", slack " + slackNanos);
        }
        this.capacity = capacity;
        this.slackNanos = slackNanos;
        this.inbox = new ManyToOneConcurrentArrayQueue<>(capacity);
        this.queue = new TimerQueue(Math.min(capacity, 1024));
        TimerSlack.available(); // links the prctl downcall here, not on the clock thread
        this.clock = Thread.ofPlatform().name(name).daemon().unstarted(this::run);
        clock.start();
    }

    /** A timer that signals {@code notifier} on expiry. */
    public Hrtimer timer(Notifier notifier) {
        return newTimer(Objects.requireNonNull(notifier, "notifier"), null);
    }

    /** A timer that unparks {@code thread} on expiry. */
    public Hrtimer timer(Thread thread) {
        return newTimer(null, Objects.requireNonNull(thread, "thread"));
    }

    private Hrtimer newTimer(Notifier n, Thread t) {
        if (closing) {
            throw new IllegalStateException("hrtimer base closed");
        }
        if (timers.incrementAndGet() > capacity) {
            timers.decrementAndGet();
            throw new IllegalStateException("hrtimer base holds " + capacity + " timers");
        }
        return new Hrtimer(this, n, t);
    }

    /** The clock thread (to check that an idle base is WAITING, not TIMED_WAITING). */
    public Thread clockThread() {
        return clock;
    }

    /** Timers armed in the clock thread's queue (a snapshot). */
    public int armed() {
        return armed;
    }

    /** Timers created and not yet closed (a snapshot). */
    public int timers() {
        return timers.get();
    }

    /** The slack each timer of this base may fire late by, in nanoseconds. */
    public long slackNanos() {
        return slackNanos;
    }

    /**
     * Wake-ups of the clock thread that fired at least one timer: with slack, fewer than the timers fired when
     * expiries lie close together.
     */
    public long expiryPasses() {
        return expiryPasses;
    }

    /** True if the clock thread got a 1 ns timer slack (Linux). */
    public boolean timerSlackSet() {
        return slackSet;
    }

    long encode(long expiresNanos) {
        long rel = Math.clamp(expiresNanos - epoch, 0, MAX_REL);
        return (rel << 1) | 1;
    }

    private long relNow() {
        return System.nanoTime() - epoch;
    }

    void enqueue(Hrtimer t, long expiresNanos) {
        if (t.markQueued() && !inbox.offer(t)) {
            // Cannot happen: every timer is in the inbox at most once and there are at most capacity timers.
            throw new IllegalStateException("hrtimer inbox overflow");
        }
        // After the offer (a CAS on the inbox tail): either the clock thread sees the entry before it sleeps,
        // or this read sees the wake-up it planned.
        // A cancel (MAX_VALUE) never wakes it: a stale entry only costs one wake-up at its old expiry.
        // MIN_VALUE (a close) always does.
        if (expiresNanos == Long.MIN_VALUE
                || (expiresNanos != Long.MAX_VALUE && Math.max(0, expiresNanos - epoch) + slackNanos < sleepUntil)) {
            LockSupport.unpark(clock);
        }
    }

    private void run() {
        slackSet = TimerSlack.setMinimal();
        while (true) {
            sleepUntil = AWAKE;
            drain();
            if (closing) {
                return;
            }
            long now = relNow();
            Hrtimer first;
            boolean fired = false;
            while ((first = queue.first()) != null && first.queuedExpires - now <= 0) {
                queue.poll();
                fired |= first.expire();
            }
            if (fired) {
                expiryPasses++;
            }
            armed = queue.size();
            long next = first == null ? FOREVER
                    : slackNanos == 0 ? first.queuedExpires : queue.latestUpTo(first.queuedExpires + slackNanos);
            sleepUntil = next;
            if (!inbox.isEmpty() || closing) {
                continue;
            }
            if (next == FOREVER) {
                LockSupport.park(this);
            } else {
                long wait = next - relNow();
                if (wait > 0) {
                    LockSupport.parkNanos(this, wait);
                }
            }
        }
    }

    private void drain() {
        Hrtimer t;
        while ((t = inbox.poll()) != null) {
            t.clearQueued();
            long word = t.word();
            if (t.isClosed()) {
                queue.remove(t);
                if (!t.released) {
                    t.released = true;
                    timers.decrementAndGet();
                }
            } else if (word == Hrtimer.INACTIVE) {
                queue.remove(t);
            } else {
                t.queuedWord = word;
                queue.add(t, word >>> 1);
            }
        }
    }

    /** Stops the clock thread; armed timers never fire. */
    @Override
    public void close() {
        closing = true;
        LockSupport.unpark(clock);
        boolean interrupted = false;
        while (clock.isAlive()) {
            try {
                clock.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
