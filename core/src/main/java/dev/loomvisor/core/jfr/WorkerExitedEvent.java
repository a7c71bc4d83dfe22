package dev.loomvisor.core.jfr;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** A vhost worker left: stopped by its device (free, reset, release) or killed with its owner (SIGKILL). */
@Name("dev.loomvisor.WorkerExited")
@Label("Worker Exited")
@Category("Loomvisor")
@Description("A vhost worker was stopped or killed")
@StackTrace(false)
public final class WorkerExitedEvent extends jdk.jfr.Event {

    @Label("Model")
    public String model;

    @Label("Owner PID")
    public int ownerPid;

    @Label("Worker TID")
    public int workerTid;

    @Label("Cause")
    @Description("stopped or killed")
    public String cause;
}
