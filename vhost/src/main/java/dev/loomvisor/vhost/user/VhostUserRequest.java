package dev.loomvisor.vhost.user;

/**
 * The front-end requests a net backend handles (vhost-user.rst "Front-end message types"; reference
 * vhost-user.md), with the payload size each must carry: a fixed size, or {@link #VARIABLE} for the two
 * whose size depends on their content (SET_MEM_TABLE, GET/SET_CONFIG).
 */
public enum VhostUserRequest {
    GET_FEATURES(1, 0),
    SET_FEATURES(2, 8),
    SET_OWNER(3, 0),
    RESET_OWNER(4, 0),
    SET_MEM_TABLE(5, -1),
    SET_VRING_NUM(8, 8),
    SET_VRING_ADDR(9, 40),
    SET_VRING_BASE(10, 8),
    GET_VRING_BASE(11, 8),
    SET_VRING_KICK(12, 8),
    SET_VRING_CALL(13, 8),
    SET_VRING_ERR(14, 8),
    GET_PROTOCOL_FEATURES(15, 0),
    SET_PROTOCOL_FEATURES(16, 8),
    GET_QUEUE_NUM(17, 0),
    SET_VRING_ENABLE(18, 8),
    SEND_RARP(19, 8),
    NET_SET_MTU(20, 8),
    GET_CONFIG(24, -1),
    SET_CONFIG(25, -1);

    /** Marks a request whose payload size is checked against its content. */
    public static final int VARIABLE = -1;

    private static final VhostUserRequest[] BY_CODE = new VhostUserRequest[64];

    static {
        for (VhostUserRequest r : values()) {
            BY_CODE[r.code] = r;
        }
    }

    private final int code;
    private final int payloadSize;

    VhostUserRequest(int code, int payloadSize) {
        this.code = code;
        this.payloadSize = payloadSize;
    }

    public int code() {
        return code;
    }

    /** The payload size the request must carry, or {@link #VARIABLE}. */
    public int payloadSize() {
        return payloadSize;
    }

    /** The request with this number, or null if this backend does not know it. */
    public static VhostUserRequest of(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
