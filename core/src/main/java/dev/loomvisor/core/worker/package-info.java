/**
 * The worker SPI the vhost layer codes against: {@link dev.loomvisor.core.worker.WorkerFactory} makes a
 * {@link dev.loomvisor.core.worker.Worker} running a {@link dev.loomvisor.core.worker.WorkerFn}: a
 * {@link dev.loomvisor.core.worker.VhostTask} (the 6.10 user worker), a
 * {@link dev.loomvisor.core.worker.KthreadWorker} or a pool's worker. Built on the kernel in {@code core}, which
 * does not know this package. Two axes,
 * {@link dev.loomvisor.core.worker.Accounting} (user worker from the owner, or kthread from kthreadd) and
 * {@link dev.loomvisor.core.Carrier} (virtual or platform thread), plus a shared
 * {@link dev.loomvisor.core.worker.KthreadPool}; {@link dev.loomvisor.core.worker.WorkerModel} names them for the
 * CLI: user-worker (default), user-worker-platform, kthread, kthread-virtual, kthread-pool.
 */
package dev.loomvisor.core.worker;
