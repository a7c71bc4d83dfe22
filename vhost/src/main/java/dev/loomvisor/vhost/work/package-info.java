/**
 * The vhost work queue (user-workers.md section 4): {@link dev.loomvisor.vhost.work.VhostWork} (the QUEUED
 * bit and the intrusive link), {@link dev.loomvisor.vhost.work.WorkList} (lock-free multi-producer list,
 * whole-batch FIFO), {@link dev.loomvisor.vhost.work.VhostWorker} (flush, the kill path),
 * {@link dev.loomvisor.vhost.work.WorkerSlot} (a ring's worker pointer with an RCU-like grace period) and
 * {@link dev.loomvisor.vhost.work.VhostPoll} (a kick eventfd queues its ring's work).
 */
package dev.loomvisor.vhost.work;
