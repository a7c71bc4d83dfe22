package dev.loomvisor.vhost.user;

import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.SinkBackend;
import java.nio.file.Path;

/**
 * Manual interop runs (not a test): serves a sink on {@code args[0]} with worker model {@code args[1]}
 * (default user-worker) and {@code args[2]} queue pairs, printing per-second stats for {@code args[3]}
 * seconds (default 30); {@code args[4] = gen} generates 60-byte frames instead of sinking; {@code args[5]}: busy-poll microseconds per ring. E.g. against dpdk-testpmd's virtio-user in txonly mode.
 */
public final class SinkServerMain {

    public static void main(String[] args) throws Exception {
        Path sock = Path.of(args[0]);
        WorkerModel model = args.length > 1 ? WorkerModel.byName(args[1]) : WorkerModel.DEFAULT;
        int pairs = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        int seconds = args.length > 3 ? Integer.parseInt(args[3]) : 30;
        boolean gen = args.length > 4 && args[4].equals("gen");
        VhostUserServer.Config cfg = VhostUserServer.Config.defaults().withModel(model).withMaxQueuePairs(pairs);
        if (args.length > 5) {
            cfg = cfg.withBusyPollMicros(Long.parseLong(args[5]));
        }
        if (gen) {
            cfg = cfg.withBackends((s, k) -> new dev.loomvisor.vhost.backend.GeneratorBackend(0x0200_0000_0001L,
                    0xffff_ffff_ffffL, 60, Long.MAX_VALUE));
        }
        try (VhostUserServer server = VhostUserServer.start(sock, cfg, new VhostUserServer.Listener() {
            @Override
            public void opened(VhostUserSession s) {
                System.err.println("opened " + s);
            }

            @Override
            public void closed(VhostUserSession s, CloseReason r) {
                System.err.println("closed " + s + ": " + r + " after " + s.messages() + " messages; " + s.stats());
            }
        })) {
            long last = 0;
            for (int t = 0; t < seconds; t++) {
                Thread.sleep(1000);
                long frames = 0;
                long bytes = 0;
                for (VhostUserSession s : server.sessions()) {
                    for (int k = 0; k < s.maxQueuePairs(); k++) {
                        if (s.backend(k) instanceof dev.loomvisor.vhost.backend.GeneratorBackend g) {
                            frames += g.counters().get(dev.loomvisor.vhost.backend.GeneratorBackend.Counter.GENERATED_FRAMES);
                        }
                        if (s.backend(k) instanceof SinkBackend sink) {
                            frames += sink.counters().get(SinkBackend.Counter.FRAMES);
                            bytes += sink.counters().get(SinkBackend.Counter.BYTES);
                        }
                    }
                    System.err.println("  " + s + " " + s.stats());
                }
                System.err.printf("t=%d frames=%d (+%d/s) bytes=%d%n", t + 1, frames, frames - last, bytes);
                last = frames;
            }
        }
    }
}
