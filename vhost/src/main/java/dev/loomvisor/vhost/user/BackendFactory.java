package dev.loomvisor.vhost.user;

import dev.loomvisor.vhost.backend.NetBackend;

/**
 * Makes the backend of one queue pair of a session, when the pair's first ring starts. A backend that is
 * {@link AutoCloseable} is closed when the session ends.
 */
@FunctionalInterface
public interface BackendFactory {

    NetBackend create(VhostUserSession session, int queuePair);
}
