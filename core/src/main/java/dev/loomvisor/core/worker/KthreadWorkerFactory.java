package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;

/** Accounting {@link Accounting#KTHREAD}: a {@link KthreadWorker} forked by kthreadd, on the given carrier. */
final class KthreadWorkerFactory implements WorkerFactory {

    private final Carrier carrier;
    private final String modelName;

    KthreadWorkerFactory(Carrier carrier, String modelName) {
        this.carrier = carrier;
        this.modelName = modelName;
    }

    @Override
    public Worker create(Task caller, WorkerFn fn, Runnable handleSigkill, String name) throws ErrnoException {
        // handleSigkill is never called: kthreads ignore signals (reference section 2).
        return KthreadWorker.create(caller, fn, name != null ? name : WorkerFactory.defaultName(caller), carrier);
    }

    @Override
    public String modelName() {
        return modelName;
    }
}
