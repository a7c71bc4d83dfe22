package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Kthreadd;
import dev.loomvisor.core.Task;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * A kthread-style pool: a fixed set of platform kthreads (forked by kthreadd, outside every owner's limits)
 * that serve many devices' workers the way a bound workqueue does. Each worker is bound at creation to one
 * pool thread (round robin), which runs its fn whenever it is woken; a fn that did work is queued again at
 * the back, so one busy device cannot starve the others on the same thread.
 *
 * <p>Each pool thread has an Agrona many-to-one array queue; a worker is in it at most once (its QUEUED
 * state), so a queue never holds more entries than workers bound to its thread, which is capped by
 * {@link #workersPerThread()} (ENOMEM beyond). Waking is allocation-free.
 */
public final class KthreadPool implements WorkerFactory {

    /** How many workers one pool thread takes by default. */
    public static final int DEFAULT_WORKERS_PER_THREAD = 4096;

    private final Kernel kernel;
    private final PoolThread[] threads;
    private final int workersPerThread;
    private final AtomicInteger nextThread = new AtomicInteger();
    private volatile boolean closed;

    /** A pool of {@code nThreads} kthreads, each serving up to {@link #DEFAULT_WORKERS_PER_THREAD} workers. */
    public KthreadPool(Kernel kernel, int nThreads) throws ErrnoException {
        this(kernel, nThreads, DEFAULT_WORKERS_PER_THREAD);
    }

    public KthreadPool(Kernel kernel, int nThreads, int workersPerThread) throws ErrnoException {
        if (nThreads < 1 || workersPerThread < 1) {
            throw new IllegalArgumentException("pool of " + nThreads + " threads x " + workersPerThread + " workers");
        }
        this.kernel = Objects.requireNonNull(kernel);
        this.workersPerThread = workersPerThread;
        this.threads = new PoolThread[nThreads];
        int created = 0;
        try {
            for (; created < nThreads; created++) {
                PoolThread t = new PoolThread(workersPerThread);
                t.task = kernel.kthreadd().create(PoolThread::taskFn, t, "kworker/lv" + created, Carrier.PLATFORM);
                threads[created] = t;
            }
        } catch (ErrnoException e) {
            for (int i = 0; i < created; i++) {
                kernel.kthreadd().stop(threads[i].task);
            }
            throw e;
        }
        for (PoolThread t : threads) {
            t.task.start();
        }
    }

    public int workersPerThread() {
        return workersPerThread;
    }

    /** The pool's kthreads. */
    public List<Task> tasks() {
        List<Task> l = new ArrayList<>(threads.length);
        for (PoolThread t : threads) {
            l.add(t.task);
        }
        return l;
    }

    @Override
    public Worker create(Task caller, WorkerFn fn, Runnable handleSigkill, String name) throws ErrnoException {
        Objects.requireNonNull(fn, "fn");
        if (closed) {
            throw new ErrnoException(Errno.ENODEV, "kthread pool closed");
        }
        for (int tries = 0; tries < threads.length; tries++) {
            PoolThread t = threads[Math.floorMod(nextThread.getAndIncrement(), threads.length)];
            if (t.assigned.incrementAndGet() <= workersPerThread) {
                return new PoolWorker(this, t, fn);
            }
            t.assigned.decrementAndGet();
        }
        throw new ErrnoException(Errno.ENOMEM, "every pool thread serves " + workersPerThread + " workers");
    }

    @Override
    public String modelName() {
        return WorkerModel.KTHREAD_POOL.modelName();
    }

    /** Stops every pool thread (kthread_stop) after the fn it is running returns; later wakes return false. */
    @Override
    public void close() {
        closed = true;
        for (PoolThread t : threads) {
            if (!t.task.isDead()) {
                kernel.kthreadd().stop(t.task);
            }
        }
    }

    boolean isClosed() {
        return closed;
    }

    /** One kthread of the pool with its run queue. */
    static final class PoolThread {
        final ManyToOneConcurrentArrayQueue<PoolWorker> queue;
        final AtomicInteger assigned = new AtomicInteger();
        Task task;

        PoolThread(int capacity) {
            queue = new ManyToOneConcurrentArrayQueue<>(capacity);
        }

        private static int taskFn(Object arg) {
            return ((PoolThread) arg).loop();
        }

        private int loop() {
            Task me = task;
            for (;;) {
                me.setCurrentStateInterruptible();
                Delays.at(Delays.Point.LOOP_AFTER_MARK);
                if (Kthreadd.shouldStop(me)) {
                    me.setRunning();
                    break;
                }
                PoolWorker w = queue.poll();
                if (w == null) {
                    Delays.at(Delays.Point.LOOP_BEFORE_SCHEDULE);
                    // Sleeping is safe even while a producer is between its tail CAS and its slot store
                    // (poll saw null, the queue is not empty): that producer wakes us after the store, and
                    // we marked ourselves before polling, so its wake-up finds us about to sleep or asleep.
                    // Spinning there instead would burn a CPU for as long as the producer is descheduled.
                    me.schedule();
                    continue;
                }
                me.setRunning();
                Delays.at(Delays.Point.LOOP_BEFORE_FN);
                w.runOnce();
            }
            return 0;
        }

        void enqueue(PoolWorker w) {
            if (!queue.offer(w)) {
                // Cannot happen: entries <= bound workers <= capacity.
                throw new IllegalStateException("pool queue overflow");
            }
            task.wakeUpProcess();
        }
    }

    /**
     * A worker served by a pool thread. State word: IDLE, QUEUED (in its thread's queue once), RUNNING,
     * RUNNING_REWAKE (woken while running: queue again afterwards), DEAD. fn runs under {@code runLock}, which
     * {@link #stop()} takes to wait for a run in progress.
     */
    static final class PoolWorker implements Worker {
        private static final int IDLE = 0;
        private static final int QUEUED = 1;
        private static final int RUNNING = 2;
        private static final int RUNNING_REWAKE = 3;
        private static final int DEAD = 4;

        private final KthreadPool pool;
        private final PoolThread thread;
        private final WorkerFn fn;
        private final AtomicInteger state = new AtomicInteger(IDLE);
        private final ReentrantLock runLock = new ReentrantLock();
        private volatile boolean started;

        PoolWorker(KthreadPool pool, PoolThread thread, WorkerFn fn) {
            this.pool = pool;
            this.thread = thread;
            this.fn = fn;
        }

        @Override
        public void start() {
            started = true;
            wake(); // the first run, as a started task's loop runs fn once
        }

        @Override
        public boolean wake() {
            if (pool.isClosed()) {
                return false;
            }
            if (!started) {
                return state.get() != DEAD; // start() runs fn anyway
            }
            for (;;) {
                int s = state.get();
                switch (s) {
                    case QUEUED, RUNNING_REWAKE -> {
                        return true;
                    }
                    case DEAD -> {
                        return false;
                    }
                    case IDLE -> {
                        if (state.compareAndSet(IDLE, QUEUED)) {
                            Delays.at(Delays.Point.WAKE_AFTER_FLAG_CHECK);
                            thread.enqueue(this);
                            return true;
                        }
                    }
                    default -> { // RUNNING
                        if (state.compareAndSet(RUNNING, RUNNING_REWAKE)) {
                            return true;
                        }
                    }
                }
            }
        }

        /** On the pool thread: one run of fn, then idle or back in the queue. */
        void runOnce() {
            runLock.lock();
            try {
                if (!state.compareAndSet(QUEUED, RUNNING)) {
                    // Stopped while queued: this was its last entry; its slot on the thread is free now.
                    thread.assigned.decrementAndGet();
                    return;
                }
                boolean did;
                try {
                    did = fn.run();
                } catch (RuntimeException | Error e) {
                    did = false; // a failing fn must not take the pool thread down with it
                }
                if (did || !state.compareAndSet(RUNNING, IDLE)) {
                    state.set(QUEUED);
                    thread.enqueue(this);
                }
            } finally {
                runLock.unlock();
            }
        }

        @Override
        public void stop() {
            int prev;
            runLock.lock(); // waits for a run in progress
            try {
                prev = state.getAndSet(DEAD);
            } finally {
                runLock.unlock();
            }
            // A queued entry is dropped by the pool thread, which frees the slot then.
            if (prev != DEAD && prev != QUEUED) {
                thread.assigned.decrementAndGet();
            }
        }

        @Override
        public Task task() {
            return thread.task;
        }

        @Override
        public boolean isKilled() {
            return false;
        }
    }
}
