package dev.loomvisor.vhost.jfr;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.jfr.WorkerCreatedEvent;
import dev.loomvisor.core.jfr.WorkerExitedEvent;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerFn;

/**
 * Where a vhost device reports its owner and workers to JDK Flight Recorder: each call is one line at the
 * device's call site, costs a flag test when no recording runs, and never runs per frame.
 */
public final class DeviceEvents {

    private DeviceEvents() {
    }

    /** {@code f.create(...)} for {@code device}, recording the worker made or the errno that refused it. */
    public static Worker createWorker(Object device, WorkerFactory f, Task caller, WorkerFn fn, Runnable handleSigkill)
            throws ErrnoException {
        Worker t;
        try {
            t = f.create(caller, fn, handleSigkill, null);
        } catch (ErrnoException e) {
            var ev = new WorkerCreatedEvent();
            if (ev.shouldCommit()) {
                ev.model = f.modelName();
                ev.ownerPid = pid(caller);
                ev.errno = e.errno().name();
                ev.commit();
            }
            throw e;
        }
        var ev = new WorkerCreatedEvent();
        if (ev.shouldCommit()) {
            ev.model = f.modelName();
            ev.ownerPid = pid(caller);
            ev.workerTid = t.task() == null ? 0 : t.task().tid();
            ev.errno = "";
            ev.commit();
        }
        return t;
    }

    /** Worker {@code t} of a device of {@code model} owned by {@code owner} left, for {@code cause}. */
    public static void workerExited(String model, Task owner, Worker t, String cause) {
        var ev = new WorkerExitedEvent();
        if (ev.shouldCommit()) {
            ev.model = model;
            ev.ownerPid = pid(owner);
            ev.workerTid = t == null || t.task() == null ? 0 : t.task().tid();
            ev.cause = cause;
            ev.commit();
        }
    }

    /** The owner of {@code device} was set, refused ({@code set-refused}) or reset (nothing if it had none). */
    public static void owner(Object device, String action, Task owner, String model) {
        var ev = new DeviceOwnerEvent();
        if (owner != null && ev.shouldCommit()) {
            ev.device = name(device);
            ev.action = action;
            ev.ownerPid = pid(owner);
            ev.model = model;
            ev.commit();
        }
    }

    /** A short identity for a device or session in events: its kind and identity hash. */
    public static String name(Object o) {
        return o == null ? "" : o.getClass().getSimpleName() + "@" + Integer.toHexString(System.identityHashCode(o));
    }

    private static int pid(Task t) {
        return t == null || t.process() == null ? 0 : t.process().pid();
    }
}
