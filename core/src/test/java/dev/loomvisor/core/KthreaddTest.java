package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** kthreadd and kernel/kthread.c: create, should-stop, stop, use_mm. */
class KthreaddTest {

    private final Kernel k = new Kernel();

    @Test
    void aKthreadBorrowsAnMmWithoutCountingItAndStopsOnRequest() throws Exception {
        Process p = owner(k);
        Mm mm = p.mm();
        AtomicReference<Mm> during = new AtomicReference<>();
        Task kt = k.kthreadd().create(arg -> {
            Task me = Task.current();
            Kthreadd.useMm(me, mm);
            during.set(me.mm());
            while (!Kthreadd.shouldStop(me)) {
                me.setCurrentStateInterruptible();
                if (Kthreadd.shouldStop(me)) {
                    me.setRunning();
                    break;
                }
                me.schedule();
            }
            Kthreadd.unuseMm(me);
            return 42;
        }, null, "vhost-" + p.pid(), Carrier.PLATFORM);
        assertSame(k.kthreadd().process(), kt.process().parent());
        assertFalse(Kthreadd.shouldStop(kt));
        kt.start();
        KernelFixture.awaitTrue("mm borrowed", () -> during.get() != null);
        assertSame(mm, during.get());
        assertEquals(1, mm.users(), "a borrowed mm has no more users");
        assertEquals(42, k.kthreadd().stop(kt));
        assertTrue(Kthreadd.shouldStop(kt));
        assertNull(kt.mm());
        assertTrue(kt.isDead());
        p.exit();
    }

    @Test
    void kthreadCallsOnATaskThatIsNotAKthreadAreRefused() throws Exception {
        Process p = owner(k);
        Task t = KernelFixture.plainThread(p);
        assertThrows(IllegalArgumentException.class, () -> Kthreadd.useMm(t, p.mm()));
        assertThrows(IllegalArgumentException.class, () -> Kthreadd.shouldStop(t));
        assertThrows(IllegalArgumentException.class, () -> k.kthreadd().stop(t));
        p.exit();
    }

    @Test
    void aKthreadNeverStartedIsStartedToSeeTheStop() throws Exception {
        Task kt = k.kthreadd().create(arg -> Kthreadd.shouldStop(Task.current()) ? 0 : 1, null, "kworker/0",
                Carrier.VIRTUAL);
        assertEquals(0, k.kthreadd().stop(kt));
    }
}
