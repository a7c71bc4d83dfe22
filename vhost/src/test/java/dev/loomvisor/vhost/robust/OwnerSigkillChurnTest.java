package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Cgroup;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Signal;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWorker;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * Owner SIGKILL under traffic (issue 8), many times: a VMM process owns two vhost-net devices joined by a
 * switch, both guests stream frames, and the process is SIGKILLed at a random moment (while it still sets
 * the devices up, right after the start, after a random number of frames, after a random pause, during a
 * flush storm, or while SIGSTOPped). Then the
 * process exits with its guests still kicking: its file table releases both devices. Each time the devices
 * must be released in bounded time and the process leave no task, ucount or pids charge; at the end no Java
 * thread and no guest memory is left. Worker models rotate; user workers take the SIGKILL path (detach,
 * leftover, exit), kthreads ignore the signal and are stopped by the release.
 */
class OwnerSigkillChurnTest {

    private static final Duration BOUND = Duration.ofSeconds(10);

    @Test
    void sigkillAtRandomMomentsReleasesEverything() throws Exception {
        int kills = Soak.size(100, 1000);
        long seed = Soak.seed();
        SplittableRandom rnd = new SplittableRandom(seed);
        Kernel kernel = new Kernel();
        Cgroup vms = kernel.rootCgroup().mkdir("vms");
        int uid = 1000;
        WorkerModel[] models = WorkerModel.values();
        Map<WorkerModel, WorkerFactory> factories = new EnumMap<>(WorkerModel.class);
        long framesBeforeKill = 0;
        int killedWorkers = 0;
        int killsDuringSetup = 0;
        int setupsFailed = 0;
        long start = System.nanoTime();
        Residue baseline;
        try {
            for (WorkerModel m : models) {
                factories.put(m, m.factory(kernel, 2));
            }
            baseline = Residue.of(kernel, uid, vms, null);
            Nmt.baseline();
            for (int i = 0; i < kills; i++) {
                WorkerModel m = models[i % models.length];
                String where = "seed=" + seed + " kill=" + i + " model=" + m.modelName();
                long[] outcome;
                try {
                    outcome = killOnce(kernel, vms, uid, factories.get(m), m, rnd, where);
                } catch (Exception e) {
                    throw new AssertionError(where, e);
                }
                framesBeforeKill += outcome[0];
                killedWorkers += (int) outcome[1];
                killsDuringSetup += outcome[2] > 0 ? 1 : 0;
                setupsFailed += outcome[2] == 2 ? 1 : 0;
                assertEquals(baseline.nrThreads(), kernel.nrThreads(), where + ": a task outlived its process");
                assertEquals(baseline.pidsCurrent(), vms.pidsCurrent(), where + ": pids charge left");
                assertEquals(baseline.ucount(), kernel.ucounts().count(uid), where + ": ucount left");
            }
        } finally {
            for (WorkerFactory f : factories.values()) {
                f.close();
            }
        }
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        // The pool's kthreads were in the baseline and are gone now: compare with an empty kernel instead.
        Residue settled = awaitNoTaskThreads(kernel, uid, vms);
        assertEquals(0, settled.liveVirtual() + settled.livePlatform(), "seed=" + seed + " task threads alive: "
                + settled.delta(baseline));
        assertEquals(2, settled.nrThreads(), "seed=" + seed + " only init and kthreadd remain");
        assertEquals(baseline.guestMemories(), settled.guestMemories(), "seed=" + seed + " guest memory left");
        assertEquals(baseline.guestBytes(), settled.guestBytes(), "seed=" + seed + " mapped bytes left");
        assertEquals(baseline.txScratchBytes(), settled.txScratchBytes(), "seed=" + seed + " TX buffers left");
        assertEquals(baseline.ucount(), settled.ucount(), "seed=" + seed);
        assertEquals(0, settled.pidsCurrent(), "seed=" + seed);
        // Before the collection: what the releases left to the GC (the switch's port queues are direct
        // buffers, the switch being the test's and not the device's); after it, nothing may remain.
        String nmtBeforeGc = Nmt.diff();
        long otherAfterGc = Nmt.awaitOtherBelow(32 * 1024, BOUND);
        if (otherAfterGc != Long.MIN_VALUE) {
            assertTrue(otherAfterGc < 32 * 1024, "seed=" + seed + " native memory (NMT Other) still up "
                    + otherAfterGc + " KiB after GC");
        }
        Soak.report("churn.owner-sigkill", "kills=" + kills + " models=" + models.length + " seed=" + seed
                + " elapsed-ms=" + elapsedMs + " frames-before-kill=" + framesBeforeKill
                + " workers-took-kill-path=" + killedWorkers + " kills-during-setup=" + killsDuringSetup
                + " setups-failed-enomem=" + setupsFailed + " live-tasks-after=" + (settled.nrThreads() - 2)
                + " live-task-threads-after=" + (settled.liveVirtual() + settled.livePlatform())
                + " mapped-bytes-after=" + (settled.guestBytes() - baseline.guestBytes())
                + " threads-delta=" + (settled.jvmThreads() - baseline.jvmThreads()) + " before-gc: " + nmtBeforeGc
                + " after-gc: nmt.Other=" + (otherAfterGc == Long.MIN_VALUE ? "n/a" : String.valueOf(otherAfterGc)));
    }

    /**
     * The SIGKILL lands while the VMM is still opening and owning its devices: a SET_OWNER then fails
     * (its clone sees the pending signal: ERESTARTNOINTR or EINTR, reported as ENOMEM) and the pair closes
     * what it had opened, or the open finished first and the exit releases everything.
     */
    private static long[] killDuringSetup(Process vmm, WorkerFactory f, VmPair.Options o, long delayNanos,
                                          String where) throws Exception {
        CompletableFuture<Void> killer = CompletableFuture.runAsync(() -> {
            LockSupport.parkNanos(delayNanos);
            vmm.kill(Signal.SIGKILL);
        });
        VmPair pair = null;
        boolean failed = false;
        try {
            pair = VmPair.open(vmm.mainTask(), f, o);
        } catch (ErrnoException e) {
            assertEquals(Errno.ENOMEM, e.errno(), where + ": a SET_OWNER failed by the kill reports ENOMEM");
            failed = true;
        }
        killer.get(BOUND.toSeconds(), TimeUnit.SECONDS);
        CompletableFuture.runAsync(vmm::exit).get(BOUND.toSeconds(), TimeUnit.SECONDS);
        assertTrue(vmm.isDead(), where + ": the process is gone");
        if (pair != null) {
            assertTrue(pair.net(0).device().isReleased() && pair.net(1).device().isReleased(), where + ": released");
            pair.close();
        }
        return new long[] {0, 0, failed ? 2 : 1};
    }

    private static Residue awaitNoTaskThreads(Kernel kernel, int uid, Cgroup vms) {
        Owners.await(BOUND, () -> kernel.liveThreads(Carrier.VIRTUAL) == 0
                && kernel.liveThreads(Carrier.PLATFORM) == 0);
        return Residue.of(kernel, uid, vms, null);
    }

    /**
     * One VMM, two devices, traffic, a SIGKILL; returns {frames delivered before the kill, workers killed,
     * 0 (or 1 for a kill during the set-up, 2 if the set-up failed by it)}.
     */
    private static long[] killOnce(Kernel kernel, Cgroup vms, int uid, WorkerFactory f, WorkerModel m,
                                   SplittableRandom rnd, String where) throws Exception {
        Process vmm = kernel.spawn("qemu", Credentials.user(uid, uid), Rlimits.nproc(Rlimits.INFINITY), vms);
        VmPair.Options o = new VmPair.Options(64, rnd.nextBoolean(), rnd.nextBoolean(), 2048, 0, 1 << 16, true, null);
        if (rnd.nextInt(6) == 0) {
            return killDuringSetup(vmm, f, o, rnd.nextLong(300_000), where);
        }
        VmPair pair = VmPair.open(vmm.mainTask(), f, o);
        AtomicBoolean storm = new AtomicBoolean();
        CompletableFuture<Void> flusher = null;
        long delivered;
        List<VhostWorker> workers = new ArrayList<>(pair.net(0).device().workers());
        workers.addAll(pair.net(1).device().workers());
        try {
            pair.guest(0).plan(pair.guest(1).mac(), 64, Long.MAX_VALUE, 0);
            pair.guest(1).plan(pair.guest(0).mac(), 64, Long.MAX_VALUE, 0);
            pair.guest(0).start();
            pair.guest(1).start();
            int moment = rnd.nextInt(5);
            switch (moment) {
                case 0 -> { } // at once: the workers may not have run a single batch yet
                case 1 -> {
                    long target = 1 + rnd.nextInt(2000);
                    assertTrue(Owners.await(BOUND, () -> pair.guest(0).received() + pair.guest(1).received() >= target),
                            where + ": traffic flows");
                }
                case 2 -> LockSupport.parkNanos(rnd.nextLong(500_000));
                case 3 -> {
                    // Flushes racing the kill: each must return (the kill path runs its completion).
                    storm.set(true);
                    flusher = CompletableFuture.runAsync(() -> {
                        while (storm.get()) {
                            pair.net(rnd.nextInt(2) == 0 ? 0 : 1).device().flush();
                        }
                    });
                    LockSupport.parkNanos(rnd.nextLong(200_000));
                }
                default -> {
                    vmm.kill(Signal.SIGSTOP); // a stopped worker must still die
                    LockSupport.parkNanos(rnd.nextLong(100_000));
                }
            }
            delivered = pair.guest(0).received() + pair.guest(1).received();
            vmm.kill(Signal.SIGKILL);
            if (m.accounting() == Accounting.USER_WORKER) {
                if (!Owners.await(BOUND, () -> workers.stream().allMatch(w -> w.thread().task().isDead()))) {
                    throw new AssertionError(where + ": every user worker left after the SIGKILL, not dead after "
                            + BOUND + ":" + WorkerDump.of(workers, List.of(pair.net(0).device(),
                            pair.net(1).device()), List.of()));
                }
            }
            storm.set(false);
            if (flusher != null) {
                flusher.get(BOUND.toSeconds(), TimeUnit.SECONDS);
            }
            // exit_group with the guests still kicking: the file table releases both devices.
            CompletableFuture.runAsync(vmm::exit).get(BOUND.toSeconds(), TimeUnit.SECONDS);
        } finally {
            storm.set(false);
            pair.stopGuests();
        }
        assertTrue(pair.net(0).device().isReleased() && pair.net(1).device().isReleased(), where + ": released");
        assertTrue(vmm.isDead(), where + ": the process is gone");
        long killed = workers.stream().filter(VhostWorker::isKilled).count();
        if (m != WorkerModel.KTHREAD_POOL) {
            for (VhostWorker w : workers) {
                assertTrue(w.thread().task().isDead(), () -> where + ": task released: " + WorkerDump.describe(w));
            }
        }
        pair.close();
        return new long[] {delivered, killed, 0};
    }
}
