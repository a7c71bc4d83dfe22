package dev.loomvisor.stress;

import dev.loomvisor.core.Notifier;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.Expect;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Mode;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.Signal;
import org.openjdk.jcstress.annotations.State;

/**
 * A blocking read (an untimed await) against a signal: the reader must always return. STALE is a lost
 * wake-up: the signal raised the count while the reader was between its check and its park.
 */
@JCStressTest(Mode.Termination)
@Description("Notifier.await vs signal: a waiting reader is always woken")
@Outcome(id = "TERMINATED", expect = Expect.ACCEPTABLE, desc = "the reader got the count")
@Outcome(id = "STALE", expect = Expect.FORBIDDEN, desc = "lost wake-up: the reader sleeps with a count pending")
@State
public class NotifierAwaitWake {

    private final Notifier n = new Notifier();

    @Actor
    public void reader() throws InterruptedException {
        n.await();
    }

    @Signal
    public void signal() {
        n.signal();
    }
}
