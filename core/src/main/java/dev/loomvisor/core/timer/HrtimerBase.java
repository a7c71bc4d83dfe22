package dev.loomvisor.core.timer;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.inject.Delays;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * {@code hrtimer_clock_base}: one clock thread serving many {@link Hrtimer}s. Arming a timer puts it (once)
 * in a lock-free many-to-one inbox; the clock thread moves inbox entries into its {@link TimerQueue}, fires
 * what is due and sleeps until the earliest expiry, or without a timeout while no timer is armed: an idle
 * base costs nothing. An arm earlier than the clock thread's planned wake-up unparks it (as hrtimer_start
 * reprograms the clock event device when the new timer becomes the first). Threads that run anyway fire due
 * timers too ({@link #runQueues}), as a running CPU's own interrupt does in Linux; the queue belongs to whichever
 * thread holds its lock.
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

    /**
     * How much later than its slack the clock thread may plan to look while threads of the base run and have
     * been firing the due timers themselves ({@link #idleExit}): the bound on a timer's lateness should every
     * running thread be held up at once (its carrier descheduled by the host). Twice the default vCPU slice.
     */
    public static final long DEFAULT_BACKSTOP_NANOS = 200_000;

    /** Timers one base takes by default. */
    public static final int DEFAULT_CAPACITY = 1 << 16;

    /** Whether running threads fire due timers ({@link #runQueues}); off only to measure what they save. */
    private static final boolean RUN_QUEUES = !"false".equals(System.getProperty("loomvisor.hrtimer.runQueues"));

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
    /** Passes that fired at least one timer (written under the queue lock). */
    private volatile long expiryPasses;
    /** Of those, passes run by a running thread ({@link #runQueues}) rather than the clock thread. */
    private volatile long runQueuesPasses;
    /**
     * The first queued expiry relative to the epoch, {@link #FOREVER} if none: what {@link #runQueues} compares
     * the time with before it takes the lock (written under the lock; timers still in the inbox are not in it).
     */
    private volatile long firstExpires = FOREVER;
    /**
     * The first expiry the clock thread's current plan was made from. A running thread that queues an earlier
     * one (a drain of the inbox in {@link #runQueues}) wakes the clock thread to plan again.
     */
    private volatile long plannedFirst = FOREVER;
    /** Threads between {@link #idleExit} and {@link #idleEnter}: they run the queues when they next halt. */
    private final AtomicInteger running = new AtomicInteger();
    private final long backstopNanos;
    /** The queue lock: 1 while a thread drains the inbox or fires timers; the queue is confined to its holder. */
    @SuppressWarnings("unused") // through LOCK
    private volatile int queueLock;
    private static final VarHandle LOCK;

    static {
        try {
            LOCK = MethodHandles.lookup().findVarHandle(HrtimerBase.class, "queueLock", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

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
        this(name, capacity, slackNanos, DEFAULT_BACKSTOP_NANOS, true);
    }

    /**
     * With {@code clockThread} false, a base with no clock event device: only {@link #runQueues} fires its
     * timers (for tests that must know which thread fired one).
     */
    HrtimerBase(String name, int capacity, long slackNanos, long backstopNanos, boolean clockThread) {
        if (capacity < 1 || slackNanos < 0 || backstopNanos < 0) {
            throw new IllegalArgumentException("capacity " + capacity + ", slack " + slackNanos + ", backstop "
                    + backstopNanos);
        }
        this.backstopNanos = backstopNanos;
        this.capacity = capacity;
        this.slackNanos = slackNanos;
        this.inbox = new ManyToOneConcurrentArrayQueue<>(capacity);
        this.queue = new TimerQueue(Math.min(capacity, 1024));
        TimerSlack.available(); // links the prctl downcall here, not on the clock thread
        this.clock = clockThread ? Thread.ofPlatform().name(name).daemon().unstarted(this::run) : null;
        if (clock != null) {
            clock.start();
        }
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

    /** Of the {@link #expiryPasses()}, those run by a running thread through {@link #runQueues}. */
    public long runQueuesPasses() {
        return runQueuesPasses;
    }

    /**
     * Fires the timers already due, from the calling thread, if there are any and no other thread is at it:
     * as Linux runs expired hrtimers from the interrupt of whichever CPU is running (hrtimer_interrupt,
     * hrtimer_run_queues), the clock thread stands for an idle CPU's clock event device only. A virtual thread
     * about to block calls it: the threads it wakes are queued on its own carrier, which is awake anyway,
     * instead of being submitted from the clock thread, which would wake a sleeping carrier (and itself) for
     * each group of expiries. Never fires a timer early; returns the timers fired. Costs one clock read when
     * nothing is due.
     */
    public int runQueues() {
        long first = firstExpires;
        // New arms wait in the inbox until a drain: one may be due already (armed for a time just past).
        if ((first == FOREVER || relNow() - first < 0) && inbox.isEmpty() || closing || !RUN_QUEUES) {
            return 0;
        }
        if (!LOCK.compareAndSet(this, 0, 1)) {
            return 0; // another thread is firing them
        }
        try {
            drain();
            if (closing) {
                return 0; // the clock thread releases the places of closed timers as it stops
            }
            int fired = expireDue(relNow());
            if (fired > 0) {
                runQueuesPasses++;
            }
            // The drain may have queued a timer armed while the clock thread was planning, which it will not find
            // in the inbox now. Dekker with run(): firstExpires was published above, then the plan is read; the
            // clock thread publishes its plan, then reads firstExpires. One of the two sees the other.
            long queued = firstExpires;
            long basis = plannedFirst;
            if (sleepUntil != AWAKE && expiresBefore(queued, basis)) {
                LockSupport.unpark(clock);
            }
            return fired;
        } finally {
            LOCK.setRelease(this, 0);
        }
    }

    /**
     * tick_nohz_idle_exit: the calling thread runs again after a halt (or starts). Until its
     * {@link #idleEnter} it calls {@link #runQueues} at least once per slice, so while any such thread runs the
     * clock thread need not wake for every group of expiries: it plans to look up to the backstop later than
     * its slack, once the running threads have been firing the due timers themselves.
     */
    public void idleExit() {
        running.incrementAndGet();
    }

    /**
     * tick_nohz_idle_enter: the calling thread is about to halt. Fires what is due, and if it was the last
     * running thread while the clock thread plans to look later than the first expiry's slack, wakes the clock
     * thread to plan again: with no thread running, the clock thread alone keeps the slack. Balanced with
     * {@link #idleExit}.
     */
    public void idleEnter() {
        runQueues();
        // Dekker with the clock thread: it publishes its plan, then reads running; this decrements running,
        // then reads the plan. One of the two sees the other.
        if (running.decrementAndGet() == 0) {
            long plan = sleepUntil;
            long first = firstExpires;
            if (plan != AWAKE && first != FOREVER && plan - (first + slackNanos) > 0) {
                LockSupport.unpark(clock);
            }
        }
    }

    /** Threads between {@link #idleExit} and {@link #idleEnter} (a snapshot). */
    public int running() {
        return running.get();
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

    /** Under the lock: fires the queued timers due at {@code now}; publishes the first expiry left. */
    private int expireDue(long now) {
        Hrtimer first;
        int fired = 0;
        while ((first = queue.first()) != null && first.queuedExpires - now <= 0) {
            queue.poll();
            if (first.expire()) {
                fired++;
            }
        }
        if (fired > 0) {
            expiryPasses++;
        }
        armed = queue.size();
        firstExpires = first == null ? FOREVER : first.queuedExpires;
        return fired;
    }

    /** True if expiry {@code a} comes before {@code b}, {@link #FOREVER} (no timer) after every time. */
    private static boolean expiresBefore(long a, long b) {
        return a != FOREVER && (b == FOREVER || a - b < 0);
    }

    private void lockQueue() {
        // Held by a running thread for one drain and one pass of expiries: microseconds.
        for (int spins = 0; !LOCK.compareAndSet(this, 0, 1); spins++) {
            if (spins < 100) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }

    private void run() {
        slackSet = TimerSlack.setMinimal();
        while (true) {
            sleepUntil = AWAKE;
            long next;
            long onTime;
            boolean extended;
            long basis;
            lockQueue();
            try {
                drain();
                if (closing) {
                    return;
                }
                // Nothing due at a planned wake-up: the running threads fired it (or it was cancelled).
                boolean keptUp = expireDue(relNow()) == 0 && RUN_QUEUES;
                Hrtimer first = queue.first();
                basis = first == null ? FOREVER : first.queuedExpires;
                plannedFirst = basis;
                onTime = first == null ? FOREVER
                        : slackNanos == 0 ? first.queuedExpires : queue.latestUpTo(first.queuedExpires + slackNanos);
                next = onTime;
                // While threads run and keep up, look again only after the backstop (see idleExit).
                extended = first != null && keptUp && running.get() > 0 && backstopNanos > 0;
                if (extended) {
                    next = Math.max(onTime, first.queuedExpires + slackNanos + backstopNanos);
                }
            } finally {
                LOCK.setRelease(this, 0);
            }
            Delays.at(Delays.Point.CLOCK_AFTER_PLAN);
            sleepUntil = next;
            long published = firstExpires;
            if (expiresBefore(published, basis)) {
                continue; // a running thread queued an earlier timer (drained from the inbox) after this plan
            }
            if (extended && running.get() == 0) {
                // The last running thread halted before it could see this plan: keep the slack.
                sleepUntil = next = onTime;
                extended = false;
            }
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
        while (clock != null && clock.isAlive()) {
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
