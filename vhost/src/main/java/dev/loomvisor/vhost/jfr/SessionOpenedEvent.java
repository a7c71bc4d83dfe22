package dev.loomvisor.vhost.jfr;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** A vhost-user frontend connected to the server's socket. */
@Name("dev.loomvisor.SessionOpened")
@Label("vhost-user Session Opened")
@Category("Loomvisor")
@StackTrace(false)
public final class SessionOpenedEvent extends jdk.jfr.Event {

    @Label("Session")
    public String session;

    @Label("Socket")
    public String socket;
}
