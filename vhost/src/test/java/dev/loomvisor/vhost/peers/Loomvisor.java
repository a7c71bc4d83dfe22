package dev.loomvisor.vhost.peers;

import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.user.CloseReason;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.IntFunction;

/**
 * Loomvisor's vhost-user server for a real-peer test: one backend per queue pair from {@code backends}
 * (by pair index), every backend made and every session close kept for the assertions.
 */
public final class Loomvisor implements AutoCloseable, VhostUserServer.Listener {

    private final Map<Integer, NetBackend> byPair = new ConcurrentHashMap<>();
    private final List<CloseReason> closes = new CopyOnWriteArrayList<>();
    private final VhostUserServer server;

    private Loomvisor(Path socket, WorkerModel model, int queuePairs, IntFunction<NetBackend> backends)
            throws IOException {
        var config = VhostUserServer.Config.defaults().withModel(model).withMaxQueuePairs(queuePairs)
                .withBackends((session, pair) -> {
                    NetBackend b = backends.apply(pair);
                    byPair.put(pair, b);
                    return b;
                });
        this.server = VhostUserServer.start(socket, config, this);
    }

    /** Serves {@code socket} with user workers. */
    public static Loomvisor serve(Path socket, int queuePairs, IntFunction<NetBackend> backends) throws IOException {
        return serve(socket, WorkerModel.DEFAULT, queuePairs, backends);
    }

    /** Serves {@code socket} with workers of {@code model}. */
    public static Loomvisor serve(Path socket, WorkerModel model, int queuePairs, IntFunction<NetBackend> backends)
            throws IOException {
        return new Loomvisor(socket, model, queuePairs, backends);
    }

    /** The backend of queue pair {@code pair} of the (latest) session, or null before its rings started. */
    @SuppressWarnings("unchecked")
    public <B extends NetBackend> B backend(int pair) {
        return (B) byPair.get(pair);
    }

    /** Waits (bounded) until queue pair {@code pair} has a backend. */
    public <B extends NetBackend> B awaitBackend(int pair, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (byPair.get(pair) == null && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        B b = backend(pair);
        if (b == null) {
            throw new AssertionError("queue pair " + pair + " got no backend within " + timeoutMillis + " ms; closes " + closes);
        }
        return b;
    }

    public VhostUserServer server() {
        return server;
    }

    /** Why sessions ended so far. */
    public List<CloseReason> closes() {
        return List.copyOf(closes);
    }

    private volatile String layout = "";

    /** The ring layout the latest session negotiated ({@link VhostUserSession#ringLayout()}), or "". */
    public String layout() {
        return layout;
    }

    @Override
    public void negotiated(VhostUserSession session, long features) {
        layout = session.ringLayout();
    }

    @Override
    public void closed(VhostUserSession session, CloseReason reason) {
        closes.add(reason);
    }

    @Override
    public void close() {
        server.close();
    }
}
