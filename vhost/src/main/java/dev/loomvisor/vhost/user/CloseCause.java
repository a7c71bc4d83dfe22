package dev.loomvisor.vhost.user;

/**
 * Why a vhost-user session ended: the peer or the server ended it, or the peer broke the protocol (every
 * value from {@link #TRUNCATED_HEADER} on is such a violation; vhost-user.rst and reference vhost-user.md
 * give the rule each one enforces). A session ends with exactly one cause.
 */
public enum CloseCause {
    /** The front-end closed the connection between messages, or reset it. */
    PEER_CLOSED(false),
    /** The server was closed. */
    SERVER_CLOSED(false),
    /** The socket failed otherwise. */
    IO_ERROR(false),
    /** The host could not give a resource the request needs (mmap, a worker, an fd). */
    RESOURCE_ERROR(false),
    /** Refused at accept: the server already serves its maximum of sessions (--max-sessions). */
    SESSION_LIMIT(false),

    /** The connection ended inside a 12-byte header. */
    TRUNCATED_HEADER(true),
    /** The connection ended inside a payload. */
    TRUNCATED_PAYLOAD(true),
    /** Header flags: version not 1, or the REPLY bit on a request. */
    BAD_FLAGS(true),
    /** Payload above 0x1000 bytes. */
    PAYLOAD_TOO_BIG(true),
    /** Payload size not the one the request carries. */
    SIZE_MISMATCH(true),
    /** A request number this backend does not implement. */
    UNKNOWN_REQUEST(true),
    /** A request came with more or fewer fds than it carries. */
    BAD_FD_COUNT(true),
    /** More than 32 fds in one message (some were lost: MSG_CTRUNC). */
    TOO_MANY_FDS(true),
    /** A kick, call or err fd that is not an eventfd. */
    NOT_AN_EVENTFD(true),
    /** SET_FEATURES with a bit that GET_FEATURES did not offer. */
    FEATURES_NOT_OFFERED(true),
    /** SET_PROTOCOL_FEATURES with a bit not offered. */
    PROTOCOL_FEATURES_NOT_OFFERED(true),
    /** A second SET_OWNER. */
    OWNER_ALREADY_SET(true),
    /** A device request before SET_OWNER. */
    NO_OWNER(true),
    /** SET_MEM_TABLE with 0 regions or more than the fds a message carries. */
    BAD_REGION_COUNT(true),
    /** A region of size 0. */
    REGION_EMPTY(true),
    /** Two regions overlap in guest-physical or front-end virtual addresses. */
    REGION_OVERLAP(true),
    /** A region whose end (address + size, or mmap_offset + size) overflows 64 bits. */
    REGION_OVERFLOW(true),
    /** A region reaching past the end of the file its fd maps (an access there would fault). */
    REGION_BEYOND_FILE(true),
    /** A vring index above the rings this backend has. */
    BAD_VRING_INDEX(true),
    /** SET_VRING_NUM of 0, not a power of two, or above the maximum. */
    BAD_VRING_NUM(true),
    /** A ring address not aligned 16 (desc), 2 (avail), 4 (used). */
    VRING_ADDR_MISALIGNED(true),
    /** A ring (address and size) not inside one region of the memory table. */
    VRING_ADDR_UNMAPPED(true),
    /** SET_VRING_ADDR asking for dirty logging, which this backend does not offer. */
    LOGGING_NOT_OFFERED(true),
    /** SET_VRING_BASE above 0xffff. */
    BAD_VRING_BASE(true),
    /** SET_VRING_KICK before any SET_MEM_TABLE. */
    KICK_BEFORE_MEM_TABLE(true),
    /** A ring started (kicked and enabled) without a size or addresses. */
    RING_NOT_CONFIGURED(true),
    /** SET_VRING_NUM/ADDR/BASE while the ring runs. */
    RING_RUNNING(true),
    /** GET/SET_CONFIG range outside the config space or not matching the size. */
    BAD_CONFIG_RANGE(true),
    /** NET_SET_MTU outside 68..65535. */
    BAD_MTU(true);

    private final boolean violation;

    CloseCause(boolean violation) {
        this.violation = violation;
    }

    /** True if the peer broke the protocol. */
    public boolean isViolation() {
        return violation;
    }
}
