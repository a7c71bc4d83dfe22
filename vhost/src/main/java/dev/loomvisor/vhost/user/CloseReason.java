package dev.loomvisor.vhost.user;

/**
 * The one reason a session ended: its cause, the request being handled (null if none: between messages,
 * or the request number was unknown) and a detail for people (numbers, not prose to parse).
 */
public record CloseReason(CloseCause cause, VhostUserRequest request, String detail) {

    @Override
    public String toString() {
        return cause + (request != null ? " in " + request : "") + (detail.isEmpty() ? "" : ": " + detail);
    }
}
