package dev.loomvisor.vhost.jfr;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** VHOST_SET_OWNER bound a device to a process, or VHOST_RESET_OWNER / release let it go. */
@Name("dev.loomvisor.DeviceOwner")
@Label("Device Owner")
@Category("Loomvisor")
@Description("A vhost device's owner was set or reset")
@StackTrace(false)
public final class DeviceOwnerEvent extends jdk.jfr.Event {

    @Label("Device")
    public String device;

    @Label("Action")
    @Description("set, set-refused or reset")
    public String action;

    @Label("Owner PID")
    public int ownerPid;

    @Label("Model")
    public String model;
}
