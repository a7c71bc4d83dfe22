package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;

/** The factories of the accounting x carrier grid and the kthread pool. */
public final class WorkerFactories {

    private WorkerFactories() {
    }

    /** One cell of the grid; user workers and kthreads own no threads until they create workers. */
    public static WorkerFactory of(Accounting accounting, Carrier carrier) {
        return switch (accounting) {
            case USER_WORKER -> new UserWorkerFactory(carrier, carrier == Carrier.VIRTUAL
                    ? WorkerModel.USER_WORKER.modelName() : WorkerModel.USER_WORKER_PLATFORM.modelName());
            case KTHREAD -> new KthreadWorkerFactory(carrier, carrier == Carrier.PLATFORM
                    ? WorkerModel.KTHREAD.modelName() : WorkerModel.KTHREAD_VIRTUAL.modelName());
        };
    }

    /** The default model: a user worker on a virtual thread. */
    public static WorkerFactory userWorker() {
        return of(Accounting.USER_WORKER, Carrier.VIRTUAL);
    }

    /** The pre-6.4 model: a kthread on a platform thread. */
    public static WorkerFactory kthread() {
        return of(Accounting.KTHREAD, Carrier.PLATFORM);
    }

    /** {@code nThreads} platform kthreads serving every worker created from it; close it when done. */
    public static KthreadPool kthreadPool(Kernel kernel, int nThreads) throws ErrnoException {
        return new KthreadPool(kernel, nThreads);
    }
}
