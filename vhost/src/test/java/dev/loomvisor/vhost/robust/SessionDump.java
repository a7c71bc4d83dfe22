package dev.loomvisor.vhost.robust;

import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.management.ObjectName;

/**
 * What a hang guard of a vhost-user server prints when sessions did not end: the server's totals, each
 * open session (messages handled, close reason, its pair's backend and worker), and the stacks of the
 * server's threads (the sessions' virtual threads included: a JDK thread dump, which
 * {@code Thread.getAllStackTraces} is not), so that the failure says where a session is stuck.
 */
final class SessionDump {

    /** At most this many sessions and thread stacks printed (the dump file holds them all). */
    static final int LIMIT = 12;

    private SessionDump() {
    }

    static String of(VhostUserServer server, Path dir) {
        StringBuilder sb = new StringBuilder();
        sb.append("\n  totals: ").append(server.totals());
        List<VhostUserSession> open = server.sessions();
        sb.append("\n  open sessions: ").append(open.size());
        int n = 0;
        for (VhostUserSession s : open) {
            if (n++ == LIMIT) {
                sb.append("\n  ...");
                break;
            }
            sb.append("\n  ").append(s).append(": messages=").append(s.messages()).append(" closed=")
                    .append(s.isClosed()).append(" reason=").append(s.closeReason()).append(" backend=")
                    .append(s.backend(0));
            var net = s.net(0);
            if (net != null) {
                for (var w : net.device().workers()) {
                    sb.append("\n    ").append(WorkerDump.describe(w));
                }
            }
        }
        sb.append(threads(dir, open));
        return sb.toString();
    }

    /**
     * HotSpotDiagnosticMXBean.dumpThreads through the platform MBean server (no read edge to jdk.management
     * needed), then the stacks of the server's threads: the open sessions', the epoll and accept threads and
     * the workers (named vhost-*).
     */
    static String threads(Path dir, List<VhostUserSession> open) {
        Path file = dir.resolve("threads-" + System.nanoTime() + ".txt");
        try {
            ManagementFactory.getPlatformMBeanServer().invoke(new ObjectName("com.sun.management:type=HotSpotDiagnostic"),
                    "dumpThreads", new Object[] {file.toString(), "TEXT_PLAIN"},
                    new String[] {String.class.getName(), String.class.getName()});
            String[] blocks = Files.readString(file).split("\n\n");
            StringBuilder sb = new StringBuilder("\n  thread dump: ").append(file);
            int shown = 0;
            for (String b : blocks) {
                String head = b.strip().lines().findFirst().orElse("");
                if (head.contains("\"vhost-") && !isIdleWorker(b) && shown++ < 3 * LIMIT) {
                    sb.append("\n    ").append(b.strip().replace("\n", "\n    "));
                }
            }
            return sb.toString();
        } catch (Exception e) {
            return "\n  thread dump failed: " + e;
        }
    }

    /** A worker waiting for work says nothing about a hang; a session's thread waiting is the news. */
    private static boolean isIdleWorker(String block) {
        return !block.contains("vhost-user-") && block.contains("awaitWork");
    }
}
