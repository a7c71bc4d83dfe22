package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vhost-user --mode tap}: its arguments, and the one line a user without CAP_NET_ADMIN gets. */
class TapModeTest {

    @TempDir
    Path dir;

    @Test
    void tapNeedsANameAndOneQueuePairAndOnlyWithModeTap() {
        String sock = dir.resolve("s").toString();
        CliRun r = CliRun.of("vhost-user", "--socket", sock, "--mode", "tap");
        assertEquals(2, r.status());
        assertTrue(r.err().startsWith("vhost-user: --tap: give an interface name"), r.err());
        assertEquals(2, CliRun.of("vhost-user", "--socket", sock, "--mode", "tap", "--tap", "lv0", "--queues", "2").status());
        assertEquals(2, CliRun.of("vhost-user", "--socket", sock, "--mode", "sink", "--tap", "lv0").status());
        assertEquals(2, CliRun.of("vhost-user", "--socket", sock, "--mode", "tap", "--tap", "a/b").status());
    }

    /**
     * The command in a child JVM whose capability bounding set lacks CAP_NET_ADMIN (setpriv, as root) or as
     * an ordinary user: creating the TAP fails, and the user reads one line saying why and what to do.
     */
    @Test
    void withoutCapNetAdminTheCommandFailsWithOneLine() throws Exception {
        Assumptions.assumeFalse("off".equals(System.getProperty("loomvisor.peers")), "real-peer tests are off");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Path options = Path.of(System.getProperty("user.dir")).getParent().resolve("scripts/jvm.options");
        List<String> cmd = new java.util.ArrayList<>();
        if ("root".equals(System.getProperty("user.name"))) {
            assertTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")), "setpriv (util-linux) to drop CAP_NET_ADMIN");
            cmd.addAll(List.of("/usr/bin/setpriv", "--bounding-set", "-net_admin"));
        }
        cmd.addAll(List.of(java.toString(), "@" + options, "-cp", System.getProperty("java.class.path"),
                "dev.loomvisor.bench.Main", "vhost-user", "--socket", dir.resolve("t.sock").toString(), "--mode", "tap",
                "--tap", "lvnocap" + ProcessHandle.current().pid() % 1000, "--duration", "1s"));
        Process p = new ProcessBuilder(cmd).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), out + err);
        assertEquals(1, err.strip().lines().count(), err);
        assertTrue(err.startsWith("vhost-user: --tap lvnocap") && err.contains("needs CAP_NET_ADMIN (EPERM)")
                && err.contains("ip tuntap add"), err);
    }
}
