package dev.loomvisor.vhost.robust;

import dev.loomvisor.core.worker.VhostTask;
import dev.loomvisor.core.testing.TaskDump;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.work.VhostWorker;
import java.util.List;

/**
 * What a failed kill or stop check prints about the workers it waited for: per worker its vhost state (killed,
 * rings attached, pending work, mutex), its core worker's flags and its task ({@link TaskDump}: state,
 * signals, the Java thread's state and stack), then the devices' rings (slot with its read-side counts) and
 * the test's own threads, so that a failure says where a worker is stuck instead of only that it is.
 */
final class WorkerDump {

    private WorkerDump() {
    }

    /** Every worker, then each device's rings, then {@code others} (producers, flushers: null ones skipped). */
    static String of(List<VhostWorker> workers, List<VhostDevice> devices, Iterable<Thread> others) {
        StringBuilder sb = new StringBuilder();
        for (VhostWorker w : workers) {
            sb.append("\n  ").append(describe(w));
        }
        for (VhostDevice dev : devices) {
            for (int q = 0; q < dev.nvqs(); q++) {
                VhostVirtqueue vq = dev.vq(q);
                sb.append("\n  ring ").append(q).append(": ").append(vq.slot()).append(" mutex=")
                        .append(vq.mutex().isLocked() ? "held" : "free");
            }
        }
        for (Thread t : others) {
            if (t != null) {
                sb.append("\n  ").append(TaskDump.thread(t));
            }
        }
        return sb.toString();
    }

    static String describe(VhostWorker w) {
        StringBuilder sb = new StringBuilder();
        sb.append(w).append(": attached=").append(w.attachmentCount()).append(" pending=").append(w.hasPendingWork())
                .append(" mutex=").append(w.mutex().isLocked() ? "held" : "free")
                .append(" (waiters ").append(w.mutex().getQueueLength()).append(')');
        Worker core = w.thread();
        if (core == null) {
            return sb.append(" no thread bound").toString();
        }
        sb.append("; ").append(core.getClass().getSimpleName()).append(" killed=").append(core.isKilled());
        if (core instanceof VhostTask vt) {
            sb.append(" stopped=").append(vt.isStopped());
        }
        return sb.append("; ").append(TaskDump.describe(core.task())).toString();
    }
}
