package dev.loomvisor.vhost.robust;

import dev.loomvisor.core.Cgroup;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.vhost.net.TxHandler;
import dev.loomvisor.vmm.memory.GuestMemory;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;

/**
 * What a churn check can leave behind, in one snapshot: emulated-kernel charges (tasks alive, the owner's
 * ucount, its cgroup's pids charge, the owner's threads), Java threads (the kernel's count of task threads
 * still in their body, by carrier, and the JVM's platform threads other than the fork-join carriers, which
 * the JDK keeps for virtual threads), and native memory (guest memories not yet closed, their bytes, and
 * the TX handlers' gather buffers, and the process's VmRSS, which is only reported: the heap moves it too).
 */
record Residue(int nrThreads, long ucount, long pidsCurrent, int ownerTasks, int liveVirtual, int livePlatform,
               int jvmThreads, long guestMemories, long guestBytes, long txScratchBytes, long rssKib,
               long heapCommittedKib) {

    static Residue of(Kernel kernel, int uid, Cgroup cgroup, Process owner) {
        return new Residue(kernel.nrThreads(), kernel.ucounts().count(uid), cgroup.pidsCurrent(),
                owner == null ? 0 : owner.tasks().size(), kernel.liveThreads(Carrier.VIRTUAL),
                kernel.liveThreads(Carrier.PLATFORM), countJvmThreads(), GuestMemory.liveMemories(),
                GuestMemory.liveBytes(), TxHandler.liveScratchBytes(), readRssKib(),
                ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted() / 1024);
    }

    /** The leak-relevant part: everything but RSS. */
    boolean sameCharges(Residue o) {
        return nrThreads == o.nrThreads && ucount == o.ucount && pidsCurrent == o.pidsCurrent
                && ownerTasks == o.ownerTasks && liveVirtual == o.liveVirtual && livePlatform == o.livePlatform
                // Fewer JVM threads is no residue: an idle virtual-thread carrier or a JDK helper thread may
                // retire during the churn (ForkJoinPool's keep-alive), which the baseline counted.
                && jvmThreads <= o.jvmThreads && guestMemories == o.guestMemories && guestBytes == o.guestBytes
                && txScratchBytes == o.txScratchBytes;
    }

    /**
     * Waits (bounded) until the charges are back at {@code baseline}: a joined thread may still be counted
     * by the JVM for a moment after its body returned. Returns the last snapshot, equal or not.
     */
    static Residue awaitBack(Residue baseline, Duration timeout, Kernel kernel, int uid, Cgroup cgroup,
                             Process owner) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Residue now = of(kernel, uid, cgroup, owner);
        while (!now.sameCharges(baseline) && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
            now = of(kernel, uid, cgroup, owner);
        }
        return now;
    }

    /** Live platform threads other than fork-join workers (virtual-thread carriers, the common pool). */
    static int countJvmThreads() {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && !t.getName().startsWith("ForkJoinPool")) {
                n++;
            }
        }
        return n;
    }

    /** VmRSS from /proc/self/status in KiB, or -1 where there is none. */
    static long readRssKib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** One line of differences from {@code baseline} (what a failure message and a report show). */
    String delta(Residue b) {
        Objects.requireNonNull(b);
        return "tasks-delta=" + (nrThreads - b.nrThreads) + " ucount-delta=" + (ucount - b.ucount)
                + " pids-delta=" + (pidsCurrent - b.pidsCurrent) + " owner-tasks=" + ownerTasks
                + " live-virtual=" + liveVirtual + " live-platform=" + livePlatform
                + " threads-delta=" + (jvmThreads - b.jvmThreads)
                + " guest-memories-delta=" + (guestMemories - b.guestMemories)
                + " mapped-bytes-delta=" + (guestBytes - b.guestBytes)
                + " tx-scratch-bytes-delta=" + (txScratchBytes - b.txScratchBytes)
                + " rss-delta-kib=" + (rssKib < 0 || b.rssKib < 0 ? "n/a" : String.valueOf(rssKib - b.rssKib))
                + " heap-committed-delta-kib=" + (heapCommittedKib - b.heapCommittedKib);
    }
}
