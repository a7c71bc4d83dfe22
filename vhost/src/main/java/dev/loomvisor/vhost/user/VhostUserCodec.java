package dev.loomvisor.vhost.user;

import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.Libc;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.function.BooleanSupplier;

/**
 * The wire side of a session: reads one message (12-byte header, payload, fds), checks what can be checked
 * without the session's state (vhost-user.rst "Message Specification": version 1, no REPLY bit on a
 * request, payload at most 4096 bytes, the size a fixed-size request carries, fds only with the requests
 * that carry them), and writes replies. Used by the session's thread only.
 *
 * <p>Its buffers come from the arena the session thread confines to itself, so ending a session closes no
 * shared arena.
 */
final class VhostUserCodec {

    private final UnixSocket socket;
    private final BooleanSupplier closing;
    private final MemorySegment rxHeader;
    private final MemorySegment rxPayload;
    private final MemorySegment tx;
    private final int[] fds = new int[VhostUser.MAX_FDS];
    private final int[] extraFds = new int[VhostUser.MAX_FDS];
    private int nfds;
    private int size;
    private boolean needReply;
    private VhostUserRequest current;

    /** @param closing true once the server ends the session (an end of stream is then SERVER_CLOSED) */
    VhostUserCodec(UnixSocket socket, Arena arena, BooleanSupplier closing) {
        this.socket = socket;
        this.closing = closing;
        this.rxHeader = arena.allocate(VhostUser.HEADER_SIZE, 8);
        this.rxPayload = arena.allocate(VhostUser.MAX_PAYLOAD, 8);
        this.tx = arena.allocate(VhostUser.HEADER_SIZE + VhostUser.MAX_PAYLOAD, 8);
    }

    /** The request being handled (null between messages, or when its number was unknown). */
    VhostUserRequest current() {
        return current;
    }

    /**
     * Reads the next message. Returns null at an end of stream between messages; throws on a violation
     * (the fds that came stay in {@link #fdCount()} until {@link #closeFds()}).
     */
    VhostUserRequest next(long protocolFeatures) throws ProtocolException, NativeException {
        current = null;
        int got = socket.recv(rxHeader, VhostUser.HEADER_SIZE, fds);
        nfds = socket.lastFdCount();
        int rflags = socket.lastFlags();
        if (got == 0) {
            return null;
        }
        if (got < VhostUser.HEADER_SIZE) {
            throw new ProtocolException(closing.getAsBoolean() ? CloseCause.SERVER_CLOSED : CloseCause.TRUNCATED_HEADER,
                    got + " of " + VhostUser.HEADER_SIZE + " header bytes");
        }
        if ((rflags & Libc.MSG_CTRUNC) != 0) {
            throw new ProtocolException(CloseCause.TOO_MANY_FDS, "more than " + VhostUser.MAX_FDS + " fds");
        }
        int code = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST);
        int flags = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS);
        size = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE);
        current = VhostUserRequest.of(code);
        if ((flags & VhostUser.VERSION_MASK) != VhostUser.VERSION || (flags & VhostUser.FLAG_REPLY) != 0) {
            throw new ProtocolException(CloseCause.BAD_FLAGS, "flags 0x" + Integer.toHexString(flags));
        }
        if (size < 0 || size > VhostUser.MAX_PAYLOAD) {
            throw new ProtocolException(CloseCause.PAYLOAD_TOO_BIG, "size " + Integer.toUnsignedString(size));
        }
        if (size > 0) {
            int p = socket.recv(rxPayload, size, extraFds);
            int extra = socket.lastFdCount();
            for (int i = 0; i < extra; i++) {
                Libc.closeQuietly(extraFds[i]);
            }
            if (p < size) {
                throw new ProtocolException(closing.getAsBoolean() ? CloseCause.SERVER_CLOSED : CloseCause.TRUNCATED_PAYLOAD,
                        p + " of " + size + " payload bytes");
            }
            if (extra != 0 || (socket.lastFlags() & Libc.MSG_CTRUNC) != 0) {
                throw new ProtocolException(CloseCause.BAD_FD_COUNT, "fds inside the payload");
            }
        }
        if (current == null) {
            throw new ProtocolException(CloseCause.UNKNOWN_REQUEST, "request " + Integer.toUnsignedString(code));
        }
        if (current.payloadSize() != VhostUserRequest.VARIABLE && size != current.payloadSize()) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, size + " bytes, expected " + current.payloadSize());
        }
        needReply = (flags & VhostUser.FLAG_NEED_REPLY) != 0
                && (protocolFeatures & VhostUser.PF_REPLY_ACK) != 0;
        return current;
    }

    /** Only SET_MEM_TABLE and SET_VRING_KICK/CALL/ERR carry fds (checked as part of handling: a REPLY_ACK says so). */
    void rejectUnexpectedFds() throws ProtocolException {
        if (current != VhostUserRequest.SET_MEM_TABLE && current != VhostUserRequest.SET_VRING_KICK
                && current != VhostUserRequest.SET_VRING_CALL && current != VhostUserRequest.SET_VRING_ERR && nfds != 0) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, nfds + " fds");
        }
    }

    /** Payload bytes of the current message. */
    int size() {
        return size;
    }

    /** The front-end asked for a REPLY_ACK and negotiated it. */
    boolean needReply() {
        return needReply;
    }

    MemorySegment payload() {
        return rxPayload;
    }

    long u64(int at) {
        return rxPayload.get(JAVA_LONG_UNALIGNED, at);
    }

    int u32(int at) {
        return rxPayload.get(JAVA_INT_UNALIGNED, at);
    }

    int fdCount() {
        return nfds;
    }

    /** The fds that came with the message (the first {@link #fdCount()}), still owned by the codec. */
    int[] fds() {
        return fds;
    }

    /** Checks that the message carries exactly the one fd of a kick, call or err (none with the no-fd bit). */
    void expectVringFd(boolean noFd) throws ProtocolException {
        if (nfds != (noFd ? 0 : 1)) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, nfds + " fds, nofd " + noFd);
        }
    }

    /** Takes over the message's one fd as an eventfd (the codec no longer closes it). */
    EventFd adoptEventFd() throws ProtocolException, NativeException {
        int fd = fds[0];
        EventFd e = EventFd.adopt(fd);
        if (e == null) {
            throw new ProtocolException(CloseCause.NOT_AN_EVENTFD, "fd " + fd);
        }
        fds[0] = -1;
        return e;
    }

    /** Closes the fds of the current message that nobody took over. */
    void closeFds() {
        for (int i = 0; i < nfds; i++) {
            if (fds[i] >= 0) {
                Libc.closeQuietly(fds[i]);
                fds[i] = -1;
            }
        }
        nfds = 0;
    }

    /** The reply's payload area (after its header), to fill before {@link #reply}. */
    MemorySegment replyPayload() {
        return tx.asSlice(VhostUser.HEADER_SIZE);
    }

    void replyU64(VhostUserRequest r, long v) throws NativeException {
        tx.set(JAVA_LONG_UNALIGNED, VhostUser.HEADER_SIZE, v);
        reply(r, 8);
    }

    void reply(VhostUserRequest r, int payloadSize) throws NativeException {
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST, r.code());
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS, VhostUser.VERSION | VhostUser.FLAG_REPLY);
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE, payloadSize);
        socket.send(tx, VhostUser.HEADER_SIZE + payloadSize, null, 0);
    }
}
