package dev.loomvisor.vhost.user;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A server listener for tests: sessions opened and closed, in order, awaited with a bound. */
final class Sessions implements VhostUserServer.Listener {

    record Closed(VhostUserSession session, CloseReason reason) {
    }

    private final BlockingQueue<VhostUserSession> opened = new LinkedBlockingQueue<>();
    private final BlockingQueue<Closed> closed = new LinkedBlockingQueue<>();

    @Override
    public void opened(VhostUserSession session) {
        opened.add(session);
    }

    @Override
    public void closed(VhostUserSession session, CloseReason reason) {
        closed.add(new Closed(session, reason));
    }

    VhostUserSession nextOpened() throws InterruptedException {
        VhostUserSession s = opened.poll(10, TimeUnit.SECONDS);
        if (s == null) {
            throw new AssertionError("no session opened within 10 s");
        }
        return s;
    }

    Closed nextClosed() throws InterruptedException {
        Closed c = closed.poll(10, TimeUnit.SECONDS);
        if (c == null) {
            throw new AssertionError("no session closed within 10 s");
        }
        return c;
    }

    int closedCount() {
        return closed.size();
    }
}
