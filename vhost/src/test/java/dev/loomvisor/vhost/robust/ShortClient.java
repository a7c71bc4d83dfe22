package dev.loomvisor.vhost.robust;

import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.VhostUserRequest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The cheapest front-ends a churn can make, one message buffer per client thread: a short session
 * (GET_FEATURES, SET_OWNER, close: the server opens the first pair's device and backend and must release
 * them), and a front-end wanting more queue pairs than the server has (GET_FEATURES, GET_QUEUE_NUM, then it
 * gives up and closes, as QEMU does with {@code queues=2} against one pair).
 */
final class ShortClient implements AutoCloseable {

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buf = arena.allocate(VhostUser.HEADER_SIZE + 8, 8);
    private final int[] noFds = new int[VhostUser.MAX_FDS];
    private final Path socket;

    ShortClient(Path socket) {
        this.socket = socket;
    }

    /** One short session; false if the server closed the connection at once (refused). */
    boolean shortSession() throws NativeException {
        try (UnixSocket s = UnixSocket.connect(socket)) {
            if (ask(s, VhostUserRequest.GET_FEATURES) < 0) {
                return false;
            }
            request(s, VhostUserRequest.SET_OWNER);
            return true;
        }
    }

    /** Connects and reads the queue count; returns it (-1 if refused). The caller then closes, as QEMU does. */
    long queueNum() throws NativeException {
        try (UnixSocket s = UnixSocket.connect(socket)) {
            if (ask(s, VhostUserRequest.GET_FEATURES) < 0) {
                return -1;
            }
            return ask(s, VhostUserRequest.GET_QUEUE_NUM);
        }
    }

    private void request(UnixSocket s, VhostUserRequest r) throws NativeException {
        buf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST, r.code());
        buf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS, VhostUser.VERSION);
        buf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE, 0);
        s.send(buf, VhostUser.HEADER_SIZE, null, 0);
    }

    /** Sends a request without payload and returns its u64 reply, or -1 at an end of stream. */
    private long ask(UnixSocket s, VhostUserRequest r) throws NativeException {
        try {
            request(s, r);
            int got = s.recv(buf, VhostUser.HEADER_SIZE + 8, noFds);
            if (got < VhostUser.HEADER_SIZE + 8) {
                return -1;
            }
        } catch (NativeException e) {
            if (e.errno() == NativeException.ECONNRESET || e.errno() == NativeException.EPIPE) {
                return -1;
            }
            throw e;
        }
        return buf.get(JAVA_LONG_UNALIGNED, VhostUser.HEADER_SIZE);
    }

    @Override
    public void close() {
        arena.close();
    }
}
