package dev.loomvisor.vhost.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import dev.loomvisor.core.Notifier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One platform thread waiting in epoll_wait on the kick eventfds of every vhost-user ring, turning each
 * kick into a signal of the ring's emulated eventfd ({@link Notifier}), whose listener (vhost_poll) queues
 * the ring's work on its worker.
 *
 * <p>It also watches the sessions' control sockets ({@link #watch}): a session's virtual thread waits for
 * its socket here instead of blocking in recvmsg, which would pin its carrier.
 *
 * <p>Why a poller thread: a vhost worker may run on a virtual thread, and a virtual thread that blocks
 * under a native frame (read on an eventfd, epoll_wait) pins its carrier. Only this platform thread ever
 * blocks natively; workers see plain j.u.c wake-ups, as with an emulated guest.
 *
 * <p>An fd is removed (and closed) under its registration's lock, and the loop drains a ready fd only under
 * that lock after checking the registration is live, so the loop never reads an fd number that was closed
 * and reused meanwhile.
 */
public final class EpollLoop implements AutoCloseable {

    /** Registrations at once (kick fds and control sockets of all sessions: 65,536 sessions of one pair). */
    public static final int MAX_REGISTRATIONS = 1 << 18;
    private static final int MAX_EVENTS = 64;
    private static final long WAKE_TOKEN = -1L;

    /** A kick fd and the emulated eventfd it signals, or a watched socket and who waits for it. */
    public static final class Registration implements AutoCloseable {
        private final EpollLoop loop;
        private final long token;
        /** The kick eventfd (drained, closed with the registration); null for a watched socket. */
        private final EventFd fd;
        private final int rawFd;
        private final Notifier target;
        private final ReentrantLock lock = new ReentrantLock();
        private boolean closed;
        private long wakeups;

        private Registration(EpollLoop loop, long token, EventFd fd, int rawFd, Notifier target) {
            this.loop = loop;
            this.token = token;
            this.fd = fd;
            this.rawFd = rawFd;
            this.target = target;
        }

        /** Times the fd was found readable with a non-zero count. */
        public long wakeups() {
            return wakeups;
        }

        /**
         * Stops watching and closes the fd (a kick eventfd; a watched socket stays open: its owner closes
         * it after this); after this returns the loop no longer touches it. Idempotent.
         */
        @Override
        public void close() {
            lock.lock();
            try {
                if (closed) {
                    return;
                }
                closed = true;
                try {
                    Libc.epollCtl(loop.epfd, Libc.EPOLL_CTL_DEL, rawFd, MemorySegment.NULL);
                } catch (NativeException ignored) {
                    // The fd left the set already (closed by the peer's side is not possible: it is ours).
                }
                if (fd != null) {
                    fd.close();
                }
            } finally {
                lock.unlock();
            }
            loop.slots.compareAndSet((int) (token & (MAX_REGISTRATIONS - 1)), this, null);
        }

        private void fire() {
            long n;
            lock.lock();
            try {
                if (closed) {
                    return;
                }
                n = fd == null ? 1 : fd.drain();
            } finally {
                lock.unlock();
            }
            if (n != 0) {
                wakeups++;
                target.signal();
            }
        }
    }

    /** A ring without a kick fd (vhost-user polling mode): signalled every {@link #POLL_MILLIS}. */
    public final class Polled implements AutoCloseable {
        private final Notifier target;

        private Polled(Notifier target) {
            this.target = target;
        }

        /** Stops the polling. Idempotent. */
        @Override
        public void close() {
            registerLock.lock();
            try {
                Notifier[] now = polled;
                int n = 0;
                Polled[] keep = new Polled[polledHandles.length];
                Notifier[] next = new Notifier[now.length];
                for (int i = 0; i < polledHandles.length; i++) {
                    if (polledHandles[i] != this) {
                        keep[n] = polledHandles[i];
                        next[n++] = now[i];
                    }
                }
                polledHandles = java.util.Arrays.copyOf(keep, n);
                polled = java.util.Arrays.copyOf(next, n);
            } finally {
                registerLock.unlock();
            }
        }
    }

    /** How often rings without a kick fd are looked at. */
    public static final int POLL_MILLIS = 1;

    private final int epfd;
    private volatile Notifier[] polled = new Notifier[0];
    private Polled[] polledHandles = new Polled[0];
    private final EventFd wake;
    private final AtomicReferenceArray<Registration> slots = new AtomicReferenceArray<>(MAX_REGISTRATIONS);
    private final ReentrantLock registerLock = new ReentrantLock();
    private final Thread thread;
    private final MemorySegment events;
    private long nextToken;
    private volatile boolean stopping;
    private volatile Throwable failure;

    public EpollLoop(String name) throws NativeException {
        this.epfd = Libc.epollCreate1(Libc.EPOLL_CLOEXEC);
        try {
            this.wake = EventFd.create();
            add(wake.fd(), WAKE_TOKEN);
        } catch (NativeException e) {
            Libc.closeQuietly(epfd);
            throw e;
        }
        this.events = Arena.ofAuto().allocate((long) MAX_EVENTS * Libc.EPOLL_EVENT_SIZE, 8);
        this.thread = Thread.ofPlatform().name(name).daemon().unstarted(this::run);
        thread.start();
    }

    private void add(int fd, long token) throws NativeException {
        add(fd, token, Libc.EPOLLIN);
    }

    private void add(int fd, long token, int events) throws NativeException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ev = a.allocate(Libc.EPOLL_EVENT_SIZE, 4);
            ev.set(JAVA_INT, Libc.EPOLL_EVENTS, events);
            ev.set(JAVA_LONG_UNALIGNED, Libc.EPOLL_DATA, token);
            Libc.epollCtl(epfd, Libc.EPOLL_CTL_ADD, fd, ev);
        }
    }

    /**
     * Watches {@code fd} (taken over: closed by {@link Registration#close}) and signals {@code target} each
     * time it becomes readable. A count already pending signals at once.
     */
    public Registration register(EventFd fd, Notifier target) throws NativeException {
        // Level-triggered: a pending count wakes the loop at once.
        return register(fd, fd.fd(), target, Libc.EPOLLIN);
    }

    /**
     * Signals {@code target} on every edge of {@code fd} becoming readable, writable or hung up
     * (edge-triggered: the waiter tries its call again after each signal, and the sticky count of the
     * {@link Notifier} loses no edge that comes between its EAGAIN and its wait). The fd stays the caller's:
     * it closes the registration first, then the fd.
     */
    public Registration watch(int fd, Notifier target) throws NativeException {
        return register(null, fd, target, Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET);
    }

    private Registration register(EventFd fd, int rawFd, Notifier target, int events) throws NativeException {
        registerLock.lock();
        try {
            for (int i = 0; i < MAX_REGISTRATIONS; i++) {
                long token = nextToken++;
                int slot = (int) (token & (MAX_REGISTRATIONS - 1));
                if (slots.get(slot) == null) {
                    Registration r = new Registration(this, token, fd, rawFd, target);
                    slots.set(slot, r);
                    try {
                        add(rawFd, token, events);
                    } catch (NativeException e) {
                        slots.set(slot, null);
                        throw e;
                    }
                    return r;
                }
            }
            throw new IllegalStateException("more than " + MAX_REGISTRATIONS + " kick fds and sockets");
        } finally {
            registerLock.unlock();
        }
    }

    /**
     * Signals {@code target} every {@link #POLL_MILLIS} ms until the handle is closed: the kick of a ring
     * whose front-end polls instead of kicking (SET_VRING_KICK with the no-fd bit).
     */
    public Polled poll(Notifier target) {
        registerLock.lock();
        try {
            Polled p = new Polled(target);
            polledHandles = java.util.Arrays.copyOf(polledHandles, polledHandles.length + 1);
            polledHandles[polledHandles.length - 1] = p;
            Notifier[] next = java.util.Arrays.copyOf(polled, polled.length + 1);
            next[next.length - 1] = target;
            polled = next;
        } finally {
            registerLock.unlock();
        }
        wake.signal(); // the loop picks its timeout again
        return polledHandles[polledHandles.length - 1];
    }

    /** The loop thread's id (to measure what it allocates). */
    public long threadId() {
        return thread.threadId();
    }

    /** The loop's failure, if epoll_wait failed and the loop ended (null while it runs). */
    public Throwable failure() {
        return failure;
    }

    private void run() {
        try {
            long nextPoll = System.nanoTime();
            while (!stopping) {
                Notifier[] ps = polled;
                int n = Libc.epollWait(epfd, events, MAX_EVENTS, ps.length == 0 ? -1 : POLL_MILLIS);
                if (ps.length != 0 && System.nanoTime() - nextPoll >= 0) {
                    nextPoll = System.nanoTime() + POLL_MILLIS * 1_000_000L;
                    for (Notifier p : ps) {
                        p.signal();
                    }
                }
                for (int i = 0; i < n; i++) {
                    long token = events.get(JAVA_LONG_UNALIGNED, (long) i * Libc.EPOLL_EVENT_SIZE + Libc.EPOLL_DATA);
                    if (token == WAKE_TOKEN) {
                        wake.drain();
                        continue;
                    }
                    Registration r = slots.get((int) (token & (MAX_REGISTRATIONS - 1)));
                    if (r != null && r.token == token) {
                        r.fire();
                    }
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /** Stops the thread and closes the epoll fd; registrations still open are closed too. */
    @Override
    public void close() {
        stopping = true;
        wake.signal();
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (int i = 0; i < MAX_REGISTRATIONS; i++) {
            Registration r = slots.get(i);
            if (r != null) {
                r.close();
            }
        }
        wake.close();
        Libc.closeQuietly(epfd);
    }
}
