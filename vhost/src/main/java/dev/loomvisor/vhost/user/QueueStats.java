package dev.loomvisor.vhost.user;

/**
 * Counters of one vring of a session (a snapshot): frames and bytes it carried (TX: handed to the backend;
 * RX: written to the front-end), frames dropped (any reason), kicks received, calls signalled, and ring
 * violations (the ring broke: the front-end's ring was bad).
 */
public record QueueStats(int vring, long frames, long bytes, long drops, long kicks, long calls, long ringErrors) {

    /** True for the RX ring of a pair (even index), false for TX. */
    public boolean isRx() {
        return (vring & 1) == 0;
    }
}
