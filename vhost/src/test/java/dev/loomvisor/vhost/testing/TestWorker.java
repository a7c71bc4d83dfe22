package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFn;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A test double of core's worker: the vhost_task loop (user-workers.md section 3) on a Java thread, with
 * a {@link #sigkill()} that emulates the owner's SIGKILL. Only for vhost's own unit tests.
 */
public final class TestWorker implements Worker {

    private final WorkerFn fn;
    private final Runnable handleSigkill;
    private final Thread thread;
    private final CountDownLatch exited = new CountDownLatch(1);
    private volatile boolean woken;
    private volatile boolean stopRequested;
    private volatile boolean killRequested;
    private volatile boolean killed;

    public TestWorker(WorkerFn fn, Runnable handleSigkill, String name, boolean virtual) {
        this.fn = fn;
        this.handleSigkill = handleSigkill;
        this.thread = (virtual ? Thread.ofVirtual() : Thread.ofPlatform().daemon()).name(name).unstarted(this::loop);
    }

    private void loop() {
        try {
            while (true) {
                if (killRequested && !stopRequested) {
                    killed = true;
                    handleSigkill.run();
                    return;
                }
                woken = false; // "about to sleep" before the STOP check and fn: no lost wake-up
                if (stopRequested) {
                    return;
                }
                if (!fn.run()) {
                    while (!woken && !stopRequested && !killRequested) {
                        LockSupport.park(this);
                    }
                }
            }
        } finally {
            exited.countDown();
        }
    }

    @Override
    public void start() {
        thread.start();
    }

    @Override
    public boolean wake() {
        woken = true;
        LockSupport.unpark(thread);
        return true;
    }

    @Override
    public void stop() {
        stopRequested = true;
        LockSupport.unpark(thread);
        if (thread.isAlive() || thread.getState() != Thread.State.NEW) {
            awaitExit();
        }
    }

    public void sigkill() {
        killRequested = true;
        LockSupport.unpark(thread);
    }

    public boolean awaitExit() {
        try {
            return exited.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Override
    public dev.loomvisor.core.Task task() {
        return null; // no emulated task behind this double
    }

    @Override
    public boolean isKilled() {
        return killed;
    }

    public Thread javaThread() {
        return thread;
    }
}
