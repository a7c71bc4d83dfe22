package dev.loomvisor.vhost.jfr;

import java.nio.file.Path;

/** Where the vhost-user server reports sessions to JDK Flight Recorder; one line at each call site. */
public final class SessionEvents {

    private SessionEvents() {
    }

    /** Session {@code id} of the server on {@code socket} started. */
    public static void opened(long id, Path socket) {
        var ev = new SessionOpenedEvent();
        if (ev.shouldCommit()) {
            ev.session = "session-" + id;
            ev.socket = String.valueOf(socket);
            ev.commit();
        }
    }

    /** Session {@code id} ended with {@code cause} (a CloseCause name) and {@code detail}. */
    public static void closed(long id, Enum<?> cause, String detail) {
        var ev = new SessionClosedEvent();
        if (ev.shouldCommit()) {
            ev.session = "session-" + id;
            ev.cause = cause.name();
            ev.detail = detail == null ? "" : detail;
            ev.commit();
        }
    }
}
