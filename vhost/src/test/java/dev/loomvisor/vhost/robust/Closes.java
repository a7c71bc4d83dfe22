package dev.loomvisor.vhost.robust;

import dev.loomvisor.vhost.user.CloseReason;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/** A listener that lets a check wait (bounded) for a number of session ends and refusals. */
final class Closes implements VhostUserServer.Listener {

    private final Semaphore closed = new Semaphore(0);
    private final Semaphore refused = new Semaphore(0);
    final AtomicLong refusals = new AtomicLong();
    volatile VhostUserSession lastOpened;

    @Override
    public void opened(VhostUserSession session) {
        lastOpened = session;
    }

    @Override
    public void closed(VhostUserSession session, CloseReason reason) {
        closed.release();
    }

    @Override
    public void refused(CloseReason reason) {
        refusals.incrementAndGet();
        refused.release();
    }

    boolean awaitClosed(int n, long seconds) throws InterruptedException {
        return closed.tryAcquire(n, seconds, TimeUnit.SECONDS);
    }

    boolean awaitRefused(int n, long seconds) throws InterruptedException {
        return refused.tryAcquire(n, seconds, TimeUnit.SECONDS);
    }
}
