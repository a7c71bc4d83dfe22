package dev.loomvisor.vmm.jfr;

import dev.loomvisor.vmm.virtio.RingError;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * A queue broke a rule of the split ring (virtio 1.2 §2.7) and stopped: once per breakage, never per
 * frame, so it is off the hot path.
 */
@Name("dev.loomvisor.RingError")
@Label("Ring Error")
@Category("Loomvisor")
@Description("A virtqueue broke a split-ring rule; the device stops the queue and asks for a reset")
@StackTrace(false)
public final class RingErrorEvent extends jdk.jfr.Event {

    @Label("Device")
    @Description("The device kind and its identity, e.g. vhost-net@1a2b3c")
    public String device;

    @Label("Queue")
    public int queue;

    @Label("Rule")
    @Description("The RingError broken")
    public String rule;

    @Label("Rule Text")
    public String ruleText;

    /** Records a breakage of queue {@code queue} of {@code owner} (a device of kind {@code kind}). */
    public static void emit(String kind, Object owner, int queue, RingError e) {
        var ev = new RingErrorEvent();
        if (ev.shouldCommit()) {
            ev.device = kind + "@" + Integer.toHexString(System.identityHashCode(owner));
            ev.queue = queue;
            ev.rule = e.name();
            ev.ruleText = e.toString();
            ev.commit();
        }
    }
}
