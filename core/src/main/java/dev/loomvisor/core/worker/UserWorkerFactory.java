package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.VhostTask;

/** Accounting {@link Accounting#USER_WORKER}: a {@link VhostTask} cloned from the owner, on the given carrier. */
final class UserWorkerFactory implements WorkerFactory {

    private final Carrier carrier;
    private final String modelName;

    UserWorkerFactory(Carrier carrier, String modelName) {
        this.carrier = carrier;
        this.modelName = modelName;
    }

    @Override
    public Worker create(Task caller, WorkerFn fn, Runnable handleSigkill, String name) throws ErrnoException {
        return VhostTask.create(caller, fn, handleSigkill, name != null ? name : WorkerFactory.defaultName(caller),
                carrier);
    }

    @Override
    public String modelName() {
        return modelName;
    }
}
