package dev.loomvisor.vhost.backend;

import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;

/**
 * The drop counters of every live L2 switch, as a periodic event (once a second while a recording enables
 * it): the switch counts drops per port on its hot path as it always does, and nothing more happens there;
 * this event only reads the counters, so a flood of drops never becomes a flood of events.
 */
@Name("dev.loomvisor.SwitchDrops")
@Label("Switch Drops")
@Category("Loomvisor")
@Description("Frames an L2 switch dropped so far, by reason (cumulative counters, one event per switch and period)")
@Period("1 s")
@StackTrace(false)
public final class SwitchDropsEvent extends jdk.jfr.Event {

    private static final Map<L2Switch, String> SWITCHES = Collections.synchronizedMap(new WeakHashMap<>());

    static {
        FlightRecorder.addPeriodicEvent(SwitchDropsEvent.class, SwitchDropsEvent::emitAll);
    }

    @Label("Switch")
    public String device;

    @Label("Ports")
    public int ports;

    @Label("Queue Full")
    @Description("Frames dropped because a destination port's queue was full")
    public long queueFull;

    @Label("No Port")
    public long noPort;

    @Label("Same Port")
    public long samePort;

    @Label("Runt")
    public long runt;

    @Label("Too Long")
    public long tooLong;

    /** Makes {@code sw}'s drop counters part of this periodic event, for as long as the switch lives. */
    public static void register(L2Switch sw) {
        SWITCHES.put(sw, "switch@" + Integer.toHexString(System.identityHashCode(sw)));
    }

    private static void emitAll() {
        Object[] entries;
        synchronized (SWITCHES) {
            entries = SWITCHES.entrySet().toArray();
        }
        for (Object o : entries) {
            @SuppressWarnings("unchecked")
            var e = (Map.Entry<L2Switch, String>) o;
            var ev = new SwitchDropsEvent();
            ev.device = e.getValue();
            for (L2Switch.Port p : e.getKey().ports()) {
                ev.ports++;
                var c = p.counters();
                ev.queueFull += c.get(L2Switch.PortCounter.TX_DROP_QUEUE_FULL);
                ev.noPort += c.get(L2Switch.PortCounter.TX_DROP_NO_PORT);
                ev.samePort += c.get(L2Switch.PortCounter.TX_DROP_SAME_PORT);
                ev.runt += c.get(L2Switch.PortCounter.TX_DROP_RUNT);
                ev.tooLong += c.get(L2Switch.PortCounter.TX_DROP_TOO_LONG);
            }
            ev.commit();
        }
    }
}
