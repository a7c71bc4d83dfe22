package dev.loomvisor.vhost.user;

/** A session must end: carries its {@link CloseCause} up to the session loop. Control path only. */
final class ProtocolException extends Exception {

    private final CloseCause cause;

    ProtocolException(CloseCause cause, String detail) {
        super(detail, null, false, false);
        this.cause = cause;
    }

    CloseCause closeCause() {
        return cause;
    }
}
