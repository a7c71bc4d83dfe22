package dev.loomvisor.vhost.jfr;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** A vhost-user session ended: the frontend hung up, broke the protocol, or the server stopped. */
@Name("dev.loomvisor.SessionClosed")
@Label("vhost-user Session Closed")
@Category("Loomvisor")
@StackTrace(false)
public final class SessionClosedEvent extends jdk.jfr.Event {

    @Label("Session")
    public String session;

    @Label("Cause")
    @Description("The CloseCause: why the session ended")
    public String cause;

    @Label("Detail")
    public String detail;
}
