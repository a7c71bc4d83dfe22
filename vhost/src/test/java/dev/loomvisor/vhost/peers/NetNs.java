package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A network namespace of the test's own, for TAP interfaces: a TAP moved into it (its fd keeps working) has
 * its addresses there, from 198.51.100.0/24 (TEST-NET-2, RFC 5737), and no route out, so no frame of a test
 * reaches a real network. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), as CI has; without it the test
 * fails naming what is missing, unless the real-peer tests are off.
 */
public final class NetNs implements AutoCloseable {

    public static final String HOST_IP = "198.51.100.1";

    private final String name;

    private NetNs(String name) {
        this.name = name;
    }

    /** Creates a fresh namespace with its loopback up. */
    public static NetNs create() throws Exception {
        Assumptions.assumeFalse(Peers.optedOut(), "real-peer tests are off (-D" + Peers.OPT_OUT + "=off)");
        Peers.require("ip", "iproute2");
        if (!"root".equals(System.getProperty("user.name"))) {
            fail("the TAP tests make a network namespace and a TAP interface: run them as root (CI does), "
                    + "or with -D" + Peers.OPT_OUT + "=off");
        }
        var ns = new NetNs("lv" + Peers.uniqueName("ns"));
        hostIp("netns", "add", ns.name);
        ns.ip("link", "set", "lo", "up");
        return ns;
    }

    public String name() {
        return name;
    }

    /**
     * Moves TAP {@code ifname} (still down, without address, in the test's namespace) into this one, gives it
     * {@code mac} and {@link #HOST_IP}/24 and brings it up.
     */
    public void adopt(String ifname, String mac) throws Exception {
        hostIp("link", "set", ifname, "netns", name);
        ip("link", "set", ifname, "address", mac);
        ip("addr", "add", HOST_IP + "/24", "dev", ifname);
        ip("link", "set", ifname, "up");
    }

    /** {@code ip -n NAME args...} */
    public String ip(String... args) throws Exception {
        var all = new ArrayList<>(List.of("-n", name));
        all.addAll(List.of(args));
        return hostIp(all.toArray(String[]::new));
    }

    /** A counter of {@code ifname} from /sys/class/net/IF/statistics inside the namespace, e.g. rx_packets. */
    public long counter(String ifname, String counter) throws Exception {
        return Long.parseLong(run(List.of("ip", "netns", "exec", name, "cat",
                "/sys/class/net/" + ifname + "/statistics/" + counter)).strip());
    }

    static String hostIp(String... args) throws Exception {
        var cmd = new ArrayList<>(List.of("ip"));
        cmd.addAll(List.of(args));
        return run(cmd);
    }

    static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + out.strip());
        }
        return out;
    }

    /** Deletes the namespace, and with it any interface still in it. */
    @Override
    public void close() throws Exception {
        hostIp("netns", "del", name);
    }
}
