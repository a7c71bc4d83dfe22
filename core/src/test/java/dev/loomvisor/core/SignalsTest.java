package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.VhostTask;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Signal delivery and where it reads PF_USER_WORKER. */
class SignalsTest {

    private final Kernel k = new Kernel();

    private static final List<Signal> CATCHABLE = List.of(Signal.SIGHUP, Signal.SIGINT, Signal.SIGQUIT,
            Signal.SIGTERM, Signal.SIGUSR1, Signal.SIGUSR2, Signal.SIGPIPE, Signal.SIGALRM, Signal.SIGTSTP);

    @Test
    void aUserWorkerTakesNoSignalButSigkillAndLeavesOnIt() throws Exception {
        Process p = owner(k);
        AtomicLong posted = new AtomicLong();
        AtomicLong seen = new AtomicLong();
        CountDownLatch handled = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            long v = posted.get();
            if (v == seen.get()) {
                return false;
            }
            seen.set(v);
            return true;
        }, handled::countDown, null);
        w.start();
        Task wt = w.task();
        Task plain = plainThread(p);

        wt.signals().setBlocked(0);
        assertEquals(Signal.ALL & ~Signal.UNBLOCKABLE, wt.signals().blocked(), "a user worker's mask never opens");
        for (Signal s : CATCHABLE) {
            wt.sendSignal(s);
            assertFalse(wt.signalPending(), s + " reached a user worker");
            assertTrue((wt.signals().pending() & s.mask()) != 0, s + " is queued, blocked, as Linux keeps it");
            posted.incrementAndGet();
            assertTrue(w.wake());
            long want = posted.get();
            awaitTrue("work after " + s, () -> seen.get() == want);
        }
        // A group signal goes to a thread that wants it (wants_signal), never to the worker.
        p.kill(Signal.SIGTERM);
        assertFalse(wt.signalPending());
        assertTrue(plain.signalPending(), "an ordinary thread takes the group's SIGTERM");
        assertEquals(1, handled.getCount(), "no signal but SIGKILL ended the worker");

        // tgkill(worker, SIGKILL) is fatal to the whole group (complete_signal), and the worker leaves by its
        // own SIGKILL path.
        wt.sendSignal(Signal.SIGKILL);
        assertTrue(handled.await(10, TimeUnit.SECONDS), "handle_sigkill ran");
        awaitTrue("worker released", wt::isDead);
        assertTrue(w.isKilled());
        assertTrue(p.mainTask().fatalSignalPending(), "the owner was killed with its worker");
        assertTrue(plain.fatalSignalPending());
        p.exit();
        assertEquals(0, k.ucounts().count(UID));
    }

    /** A body that handles signals like a worker loop, with cleanup after getSignal says "exit". */
    private record Loop(AtomicBoolean cleanedUp, CountDownLatch running) implements KernelCloneArgs.Fn {
        @Override
        public int run(Object arg) {
            Task me = Task.current();
            running.countDown();
            for (;;) {
                me.setCurrentStateInterruptible();
                if (me.signalPending()) {
                    me.setRunning();
                    if (me.signals().getSignal()) {
                        cleanedUp.set(true);
                        return 7;
                    }
                    continue;
                }
                me.schedule();
            }
        }
    }

    private Task startLoop(Process p, boolean userWorker, Loop loop) throws Exception {
        KernelCloneArgs args = new KernelCloneArgs().flags(KernelCloneArgs.VHOST_TASK_FLAGS).exitSignal(null)
                .userWorker(userWorker).noFiles(true).name(userWorker ? "vhost-x" : "vcpu0").fn(loop, null);
        Task t = k.copyProcess(p.mainTask(), args);
        t.start();
        assertTrue(loop.running().await(10, TimeUnit.SECONDS));
        return t;
    }

    @Test
    void onSigkillOnlyAUserWorkerRunsItsOwnExitPathAnyOtherTaskIsTakenDown() throws Exception {
        Process p = owner(k);
        Loop worker = new Loop(new AtomicBoolean(), new CountDownLatch(1));
        Loop thread = new Loop(new AtomicBoolean(), new CountDownLatch(1));
        Task wt = startLoop(p, true, worker);
        Task tt = startLoop(p, false, thread);
        p.kill(Signal.SIGKILL);
        wt.awaitExit();
        tt.awaitExit();
        assertTrue(worker.cleanedUp().get(), "get_signal hands SIGKILL back to a PF_USER_WORKER");
        assertEquals(7, wt.exitCode());
        assertFalse(thread.cleanedUp().get(), "do_group_exit: no line after get_signal runs");
        assertEquals(Signal.SIGKILL.number(), tt.exitCode(), "killed by signal 9");
        awaitTrue("both released", () -> wt.isDead() && tt.isDead());
        p.exit();
    }

    @Test
    void sigkillToOneTaskKillsItsGroupButNotAnother() throws Exception {
        Process a = owner(k);
        Process b = owner(k);
        Task a1 = plainThread(a);
        Task b1 = plainThread(b);
        a1.sendSignal(Signal.SIGKILL);
        assertTrue(a.mainTask().fatalSignalPending());
        assertTrue(a1.fatalSignalPending());
        assertFalse(b.mainTask().fatalSignalPending());
        assertFalse(b1.fatalSignalPending());
        a.exit();
        b.exit();
    }

    @Test
    void aBlockedSignalStaysQueuedForAnOrdinaryThreadUntilUnblocked() throws Exception {
        Process p = owner(k);
        Task t = plainThread(p);
        t.signals().setBlocked(Signal.SIGUSR1.mask());
        t.sendSignal(Signal.SIGUSR1);
        assertFalse(t.signalPending());
        t.signals().setBlocked(0);
        assertTrue(t.signalPending());
        assertEquals(Signal.SIGUSR1, t.signals().dequeue());
        assertNull(t.signals().dequeue());
        p.exit();
    }

    @Test
    void kthreadsIgnoreEverySignal() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        Task kt = k.kthreadd().create(arg -> {
            runs.incrementAndGet();
            return 0;
        }, null, "kworker/x", Carrier.PLATFORM);
        for (Signal s : Signal.values()) {
            kt.sendSignal(s);
        }
        assertFalse(kt.signalPending());
        assertEquals(0, k.kthreadd().stop(kt));
        assertEquals(1, runs.get());
    }
}
