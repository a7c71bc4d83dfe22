package dev.loomvisor.bench.journal;

import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;
import net.openhft.chronicle.queue.ChronicleQueue;

/**
 * The child JVM of {@link KilledLockHolderTest}: opens the journal's queue at {@code args[0]}, begins a
 * document (which takes the queue's write lock) and prints {@code locked}, then waits with the lock held
 * until it is killed, as a writer killed in the middle of an append would leave it.
 */
public final class LockHoldingChild {

    public static void main(String[] args) {
        ChronicleQueue queue = ChronicleQueue.singleBuilder(Path.of(args[0])).build();
        var dc = queue.createAppender().writingDocument();
        dc.wire().write("type").text("start"); // half a document: never finished
        System.out.println("locked");
        System.out.flush();
        while (true) {
            LockSupport.park();
        }
    }
}
