package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.KernelCloneArgs;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.TaskStat;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.net.VmmBackend.VringWorkers;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The limits scenario (user-workers.md section 2): an unprivileged VMM process with RLIMIT_NPROC and a
 * pids cgroup starts its vCPUs, then asks for vhost-net devices, one SET_OWNER each, under one worker model.
 * vCPUs are threads of the VMM (cloned with CLONE_THREAD from its main task, as QEMU's are), so they count
 * against its RLIMIT_NPROC and pids.max under every model. User workers are the owner's threads too, so the
 * kernel refuses the worker that would pass a limit shared with the vCPUs (SET_OWNER fails with ENOMEM);
 * kthreads are kthreadd's children in the root cgroup, so the same owner ends up served by more threads than
 * its limits allow: the excess Linux 6.4 removed.
 *
 * <p>A device is a NIC with {@code queues} queue pairs: one vhost-net per pair (as QEMU opens them), so one
 * worker per pair from SET_OWNER; with {@link VringWorkers#PER_VIRTQUEUE} each pair's TX ring also gets its
 * own worker through VHOST_NEW_WORKER and VHOST_ATTACH_VRING_WORKER. Those extra user workers count against
 * the same limit (the NIC then stops at it sooner); kthread models refuse NEW_WORKER (EFAULT) and keep one
 * worker per pair.
 */
public final class LimitsScenario {

    /** What one model did. {@code workersOverLimit} counts the threads serving the owner beyond its limit. */
    public record Result(String model, long nproc, long pidsMax, int vcpusAsked, int vcpuTasks,
                         Map<Errno, Integer> vcpuErrors, int devicesAsked, int devicesCreated,
                         Map<Errno, Integer> errors, long ownerTasks, long workerThreads, long workersInOwner,
                         long ownerCountedTasks, long cgroupPids, long workersOverLimit, int queues,
                         VringWorkers vringWorkers, int vhostNets, long deviceWorkers,
                         Map<Errno, Integer> newWorkerErrors) {

        public Result(String model, long nproc, long pidsMax, int vcpusAsked, int vcpuTasks,
                      Map<Errno, Integer> vcpuErrors, int devicesAsked, int devicesCreated,
                      Map<Errno, Integer> errors, long ownerTasks, long workerThreads, long workersInOwner,
                      long ownerCountedTasks, long cgroupPids, long workersOverLimit) {
            this(model, nproc, pidsMax, vcpusAsked, vcpuTasks, vcpuErrors, devicesAsked, devicesCreated, errors,
                    ownerTasks, workerThreads, workersInOwner, ownerCountedTasks, cgroupPids, workersOverLimit, 1,
                    VringWorkers.PER_PAIR, devicesCreated, workerThreads, Map.of());
        }

        public Map<String, Object> toMap() {
            var m = new LinkedHashMap<String, Object>();
            m.put("model", model);
            m.put("rlimitNproc", nproc);
            m.put("pidsMax", pidsMax == Long.MAX_VALUE ? null : pidsMax);
            m.put("vcpusAsked", (long) vcpusAsked);
            m.put("vcpuTasks", (long) vcpuTasks);
            m.put("vcpuErrors", names(vcpuErrors));
            m.put("devicesAsked", (long) devicesAsked);
            m.put("devicesCreated", (long) devicesCreated);
            m.put("queues", (long) queues);
            m.put("vringWorkers", vringWorkers.name());
            m.put("vhostNets", (long) vhostNets);
            m.put("deviceWorkers", deviceWorkers);
            m.put("errors", names(errors));
            m.put("newWorkerErrors", names(newWorkerErrors));
            m.put("ownerTasks", ownerTasks);
            m.put("workerThreads", workerThreads);
            // Who is counted against the owner's RLIMIT_NPROC (its uid's task count): the main task, every
            // vCPU, and the workers that are the owner's threads (user workers; never a kthread).
            var counted = new LinkedHashMap<String, Object>();
            counted.put("mainTask", 1L);
            counted.put("vcpuTasks", (long) vcpuTasks);
            counted.put("workers", workersInOwner);
            counted.put("total", ownerCountedTasks);
            m.put("countedAgainstNproc", counted);
            m.put("ownerUcount", ownerCountedTasks);
            m.put("cgroupPidsCurrent", cgroupPids);
            m.put("workersOverLimit", workersOverLimit);
            return m;
        }

        private static Map<String, Object> names(Map<Errno, Integer> errors) {
            var e = new LinkedHashMap<String, Object>();
            errors.forEach((k, v) -> e.put(k.name(), (long) v));
            return e;
        }
    }

    /** The owner's uid: unprivileged, so neither root nor a capability exempts it from RLIMIT_NPROC. */
    static final int UID = 1000;

    private LimitsScenario() {}

    /** {@link #run(WorkerModel, long, long, int, int)} for a VMM without vCPUs. */
    public static Result run(WorkerModel model, long nproc, long pidsMax, int devices) throws ErrnoException {
        return run(model, nproc, pidsMax, 0, devices);
    }

    /**
     * Runs the scenario for one model in a kernel of its own and tears everything down again.
     *
     * @param nproc the owner's RLIMIT_NPROC (its own main task counts against it)
     * @param pidsMax pids.max of the owner's cgroup, or {@link Long#MAX_VALUE} for none
     * @param vcpus how many vCPU threads the VMM starts before it asks for devices
     * @param devices how many devices the owner asks for
     */
    public static Result run(WorkerModel model, long nproc, long pidsMax, int vcpus, int devices)
            throws ErrnoException {
        return run(model, nproc, pidsMax, vcpus, devices, 1, VringWorkers.PER_PAIR);
    }

    /**
     * As {@link #run(WorkerModel, long, long, int, int)}, each device a NIC of {@code queues} queue pairs whose
     * rings get workers as {@code vringWorkers} says. A NIC counts as created when every pair's SET_OWNER
     * succeeded; a refused NEW_WORKER leaves its pair on the default worker and is counted by errno.
     */
    public static Result run(WorkerModel model, long nproc, long pidsMax, int vcpus, int devices, int queues,
                             VringWorkers vringWorkers) throws ErrnoException {
        Kernel kernel = new Kernel();
        var cgroup = kernel.rootCgroup().mkdir("vmm");
        if (pidsMax != Long.MAX_VALUE) {
            cgroup.setPidsMax(pidsMax);
        }
        Process vmm = kernel.spawn("qemu", Credentials.user(UID, UID), Rlimits.nproc(nproc), cgroup);
        Task owner = vmm.mainTask();
        List<VhostNet> opened = new ArrayList<>();
        Map<Errno, Integer> errors = new EnumMap<>(Errno.class);
        Map<Errno, Integer> vcpuErrors = new EnumMap<>(Errno.class);
        Map<Errno, Integer> newWorkerErrors = new EnumMap<>(Errno.class);
        int created = 0;
        try (WorkerFactory factory = model.factory(kernel)) {
            for (int i = 0; i < vcpus; i++) {
                try {
                    startVcpu(owner, i);
                } catch (ErrnoException e) {
                    vcpuErrors.merge(e.errno(), 1, Integer::sum);
                }
            }
            for (int i = 0; i < devices; i++) {
                boolean complete = true;
                for (int k = 0; k < queues && complete; k++) {
                    VhostNet net = VhostNet.open(owner, factory);
                    try {
                        net.device().setOwner(owner);
                        opened.add(net);
                    } catch (ErrnoException e) {
                        errors.merge(e.errno(), 1, Integer::sum);
                        net.close();
                        complete = false;
                        continue;
                    }
                    if (vringWorkers == VringWorkers.PER_VIRTQUEUE) {
                        try {
                            int w = net.device().newWorker(owner);
                            net.device().attachVringWorker(owner, VirtioNet.TX, w);
                        } catch (ErrnoException e) {
                            newWorkerErrors.merge(e.errno(), 1, Integer::sum);
                        }
                    }
                }
                if (complete) {
                    created++;
                }
            }
            // Distinct threads that serve this owner's devices, wherever they were cloned from (a pool
            // thread serving many devices counts once).
            var threads = new IdentityHashMap<Task, Boolean>();
            long deviceWorkers = 0;
            for (VhostNet n : opened) {
                var ws = n.device().workers();
                deviceWorkers += ws.size();
                ws.forEach(w -> threads.put(w.thread().task(), Boolean.TRUE));
            }
            // ps -L of the VMM: its threads are the main task, the vCPUs and the user workers.
            List<TaskStat> rows = vmm.threads();
            long ownerTasks = rows.size();
            long workersInOwner = rows.stream().filter(r -> r.isThread() && r.hasFlag(Task.PF_USER_WORKER)).count();
            int vcpuTasks = (int) rows.stream().filter(r -> r.isThread() && !r.hasFlag(Task.PF_USER_WORKER)).count();
            long workerThreads = threads.size();
            // The owner's own threads (main task, vCPUs, user workers) plus workers serving it from outside.
            long serving = ownerTasks + (workerThreads - workersInOwner);
            long limit = Math.min(nproc, pidsMax);
            return new Result(model.modelName(), nproc, pidsMax, vcpus, vcpuTasks, vcpuErrors, devices, created,
                    errors, ownerTasks, workerThreads, workersInOwner, kernel.ucounts().count(UID),
                    cgroup.pidsCurrent(), Math.max(0, serving - limit), queues, vringWorkers, opened.size(),
                    deviceWorkers, newWorkerErrors);
        } finally {
            opened.forEach(VhostNet::close);
            vmm.exit();
        }
    }

    /**
     * A vCPU thread as QEMU makes it: cloned with pthread's flags (CLONE_THREAD among them) from the VMM's main
     * task, so it is charged to the owner's uid and cgroup. It idles until its group is killed.
     */
    private static Task startVcpu(Task owner, int index) throws ErrnoException {
        KernelCloneArgs args = new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS).exitSignal(null)
                .name("vcpu" + index).carrier(Carrier.VIRTUAL).fn(LimitsScenario::idleVcpu, null);
        Task t = owner.kernel().copyProcess(owner, args);
        t.start();
        return t;
    }

    private static int idleVcpu(Object unused) {
        Task me = Task.current();
        for (;;) {
            me.setCurrentStateInterruptible();
            if (me.signalPending()) {
                me.setRunning();
                me.signals().getSignal(); // SIGKILL takes the vCPU down with its group
                continue;
            }
            me.schedule();
        }
    }
}
