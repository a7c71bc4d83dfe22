package dev.loomvisor.vhost.work;

/** Where a poll sends its work: a virtqueue, which forwards to whichever worker is attached right now. */
@FunctionalInterface
public interface WorkTarget {

    /**
     * vhost_vq_work_queue: queues {@code work} on the attached worker.
     *
     * @return false if no worker is attached (none yet, or the owner was killed and the worker detached)
     */
    boolean queueWork(VhostWork work);
}
