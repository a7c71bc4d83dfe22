/**
 * jcstress tests (issue 8) of the primitives the lost-wake-up bugs lived in: the vhost work list with its
 * QUEUED bit ({@link dev.loomvisor.stress.WorkListQueueVsTake}, {@link dev.loomvisor.stress.WorkListTwoProducers},
 * {@link dev.loomvisor.stress.WorkQueuedFlag})
 * and the eventfd emulation ({@link dev.loomvisor.stress.NotifierSignalConsume},
 * {@link dev.loomvisor.stress.NotifierListenerStart}, {@link dev.loomvisor.stress.NotifierAwaitWake}).
 * At most two actors each: jcstress runs no test with more actors than CPUs, and CI has two. Built into
 * target/jcstress.jar; the module's verify phase runs them in sanity mode.
 */
package dev.loomvisor.stress;
