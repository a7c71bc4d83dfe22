package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VhostNet;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The limits scenario (user-workers.md section 2): an unprivileged VMM process with RLIMIT_NPROC and a
 * pids cgroup asks for vhost-net devices, one SET_OWNER each, under one worker model. User workers are
 * the owner's threads, so the kernel refuses the worker that would pass a limit (SET_OWNER fails with
 * ENOMEM); kthreads are kthreadd's children in the root cgroup, so the same owner ends up served by more
 * threads than its limits allow: the excess Linux 6.4 removed.
 */
public final class LimitsScenario {

    /** What one model did. {@code workersOverLimit} counts the threads serving the owner beyond its limit. */
    public record Result(String model, long nproc, long pidsMax, int devicesAsked, int devicesCreated,
                         Map<Errno, Integer> errors, long ownerTasks, long workerThreads,
                         long ownerCountedTasks, long cgroupPids, long workersOverLimit) {

        public Map<String, Object> toMap() {
            var m = new LinkedHashMap<String, Object>();
            m.put("model", model);
            m.put("rlimitNproc", nproc);
            m.put("pidsMax", pidsMax == Long.MAX_VALUE ? null : pidsMax);
            m.put("devicesAsked", (long) devicesAsked);
            m.put("devicesCreated", (long) devicesCreated);
            var e = new LinkedHashMap<String, Object>();
            errors.forEach((k, v) -> e.put(k.name(), (long) v));
            m.put("errors", e);
            m.put("ownerTasks", ownerTasks);
            m.put("workerThreads", workerThreads);
            m.put("ownerUcount", ownerCountedTasks);
            m.put("cgroupPidsCurrent", cgroupPids);
            m.put("workersOverLimit", workersOverLimit);
            return m;
        }
    }

    /** The owner's uid: unprivileged, so neither root nor a capability exempts it from RLIMIT_NPROC. */
    static final int UID = 1000;

    private LimitsScenario() {}

    /**
     * Runs the scenario for one model in a kernel of its own and tears everything down again.
     *
     * @param nproc the owner's RLIMIT_NPROC (its own main task counts against it)
     * @param pidsMax pids.max of the owner's cgroup, or {@link Long#MAX_VALUE} for none
     * @param devices how many devices the owner asks for
     */
    public static Result run(WorkerModel model, long nproc, long pidsMax, int devices) throws ErrnoException {
        Kernel kernel = new Kernel();
        var cgroup = kernel.rootCgroup().mkdir("vmm");
        if (pidsMax != Long.MAX_VALUE) {
            cgroup.setPidsMax(pidsMax);
        }
        Process vmm = kernel.spawn("qemu", Credentials.user(UID, UID), Rlimits.nproc(nproc), cgroup);
        Task owner = vmm.mainTask();
        List<VhostNet> opened = new ArrayList<>();
        Map<Errno, Integer> errors = new EnumMap<>(Errno.class);
        int created = 0;
        try (WorkerFactory factory = model.factory(kernel)) {
            for (int i = 0; i < devices; i++) {
                VhostNet net = VhostNet.open(owner, factory);
                try {
                    net.device().setOwner(owner);
                    created++;
                    opened.add(net);
                } catch (ErrnoException e) {
                    errors.merge(e.errno(), 1, Integer::sum);
                    net.close();
                }
            }
            // Distinct threads that serve this owner's devices, wherever they were cloned from (a pool
            // thread serving many devices counts once).
            var threads = new IdentityHashMap<Task, Boolean>();
            for (VhostNet n : opened) {
                n.device().workers().forEach(w -> threads.put(w.thread().task(), Boolean.TRUE));
            }
            long ownerTasks = vmm.tasks().size();
            long workerThreads = threads.size();
            long userWorkersInOwner = threads.keySet().stream().filter(t -> t.process() == vmm).count();
            // The owner's own threads (main task, vCPUs) plus workers serving it from outside its process.
            long serving = ownerTasks + (workerThreads - userWorkersInOwner);
            long limit = Math.min(nproc, pidsMax);
            Result r = new Result(model.modelName(), nproc, pidsMax, devices, created, errors, ownerTasks,
                    workerThreads, kernel.ucounts().count(UID), cgroup.pidsCurrent(), Math.max(0, serving - limit));
            return r;
        } finally {
            opened.forEach(VhostNet::close);
            vmm.exit();
        }
    }
}
