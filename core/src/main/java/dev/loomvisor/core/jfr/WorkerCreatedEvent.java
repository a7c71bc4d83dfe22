package dev.loomvisor.core.jfr;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * A device asked for a worker (vhost_worker_create): made, or refused with an errno (EAGAIN from
 * RLIMIT_NPROC or pids.max for a user worker; a kthread is never counted against its owner).
 */
@Name("dev.loomvisor.WorkerCreated")
@Label("Worker Created")
@Category("Loomvisor")
@Description("A vhost worker was created for a device owner, or its creation was refused")
@StackTrace(false)
public final class WorkerCreatedEvent extends jdk.jfr.Event {

    @Label("Model")
    @Description("Worker model: user-worker, user-worker-platform, kthread, kthread-virtual, kthread-pool")
    public String model;

    @Label("Owner PID")
    public int ownerPid;

    @Label("Worker TID")
    @Description("The worker task's tid; 0 when refused")
    public int workerTid;

    @Label("Errno")
    @Description("Why the creation was refused (EAGAIN, ENOMEM...); empty when the worker was made")
    public String errno;
}
