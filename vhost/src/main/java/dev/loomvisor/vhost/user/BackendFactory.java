package dev.loomvisor.vhost.user;

import dev.loomvisor.vhost.backend.NetBackend;

/**
 * Makes the backend of one queue pair of a session, when the pair's first device opens (SET_OWNER for pair
 * 0, the first ring that starts for the others). A backend that is {@link AutoCloseable} is closed when its
 * pair closes (RESET_OWNER, or the session's end).
 */
@FunctionalInterface
public interface BackendFactory {

    NetBackend create(VhostUserSession session, int queuePair);

    /**
     * The pair's backend was closed: its device is gone and its pending frames were discarded (counted in
     * the session's {@link FrameAccount}). A factory that keeps backends for their counters folds them here
     * and lets go of the backend, so a long-running server holds nothing of closed sessions.
     */
    default void released(VhostUserSession session, int queuePair, NetBackend backend) {
    }
}
