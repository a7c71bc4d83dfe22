package dev.loomvisor.stress;

import dev.loomvisor.core.Notifier;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.Expect;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.I_Result;

/**
 * vhost_poll_start against a kick: one actor signals, the other installs the listener and then checks
 * whether the fd is already signalled (as VhostPoll.start does). r1: how often the work was queued, by the
 * listener or by the check. The kick must queue it at least once (twice when both saw it); never zero.
 */
@JCStressTest
@Description("Notifier listener install vs signal: a kick before or during poll start is never lost")
@Outcome(id = {"1", "2"}, expect = Expect.ACCEPTABLE, desc = "queued by the listener, the check, or both")
@Outcome(id = "0", expect = Expect.FORBIDDEN, desc = "the kick was lost")
@State
public class NotifierListenerStart {

    private final Notifier kick = new Notifier();
    private final AtomicInteger queued = new AtomicInteger();

    @Actor
    public void guestKicks() {
        kick.signal();
    }

    @Actor
    public void pollStart() {
        kick.setListener(n -> queued.incrementAndGet());
        if (kick.isSignalled()) {
            queued.incrementAndGet();
        }
    }

    @Arbiter
    public void arbiter(I_Result r) {
        r.r1 = queued.get();
    }
}
