package dev.loomvisor.vhost.peers;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * DPDK 22.11's {@code dpdk-testpmd} as a child process, driven through its interactive stdin: either a
 * virtio-user frontend connecting to a vhost-user socket (what Loomvisor serves), or DPDK's own vhost-user
 * backend listening on one (the reference Loomvisor is measured against). Every wait is bounded;
 * {@link #close} always ends the process.
 *
 * <p>testpmd runs under {@code stdbuf -o0}: its printf output is block-buffered on a pipe and would only
 * arrive at exit, while the prompt is written unbuffered. It runs without hugepages ({@code --no-huge -m
 * 256}) and with its own {@code --file-prefix}, so several can run at once.
 */
public final class Testpmd implements AutoCloseable {

    public static final String PACKAGES = "dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23";
    private static final String PROMPT = "testpmd> ";
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final Pattern STATS_BLOCK = Pattern.compile(
            "NIC statistics for port (\\d+)\\s+#+\\s*\\n(.*?)\\n\\s*#{20,}", Pattern.DOTALL);

    /** Which side of the vhost-user socket this testpmd is. */
    public enum Role {
        /** {@code net_virtio_user0,path=SOCK}: connects to a backend's socket. */
        FRONTEND,
        /** {@code net_vhost0,iface=SOCK}: DPDK's own backend, listening on the socket. */
        BACKEND
    }

    /** One port's counters from {@code show port stats all}. */
    public record Stats(long rxPackets, long rxMissed, long rxBytes, long rxErrors, long rxNoMbuf,
                        long txPackets, long txErrors, long txBytes) {
    }

    private final String name;
    private final Process process;
    private final ProcessOutput output;
    private final OutputStream stdin;
    private final String filePrefix;

    private Testpmd(String name, Process process, String filePrefix) {
        this.name = name;
        this.process = process;
        this.filePrefix = filePrefix;
        this.output = new ProcessOutput(process.getInputStream(), name);
        this.stdin = process.getOutputStream();
    }

    /** A virtio-user frontend on {@code socket} with {@code queues} queue pairs, forwarding on lcore 1. */
    public static Testpmd frontend(Path socket, int queues) throws IOException, InterruptedException {
        return start(Role.FRONTEND, socket, queues, 1);
    }

    /** A frontend with extra virtio-user devargs, e.g. {@code packed_vq=1,in_order=1}. */
    public static Testpmd frontend(Path socket, int queues, String devargs) throws IOException, InterruptedException {
        return start(Role.FRONTEND, socket, queues, 1, devargs);
    }

    /**
     * Starts testpmd and waits for its first prompt (the port is configured then; a frontend has already
     * connected and negotiated).
     *
     * @param forwardingCore the lcore (0 or 1) of the forwarding thread; the other is the main lcore, which
     *     only reads commands. Two testpmds on one 2-core machine must forward on different cores, or both
     *     spin on one and crawl.
     */
    public static Testpmd start(Role role, Path socket, int queues, int forwardingCore)
            throws IOException, InterruptedException {
        return start(role, socket, queues, forwardingCore, "");
    }

    static Testpmd start(Role role, Path socket, int queues, int forwardingCore, String devargs)
            throws IOException, InterruptedException {
        Path exe = Peers.require("dpdk-testpmd", PACKAGES);
        Path stdbuf = Peers.require("stdbuf", "coreutils");
        if (queues < 1 || queues > 8 || (forwardingCore != 0 && forwardingCore != 1)) {
            throw new IllegalArgumentException("queues " + queues + ", forwarding core " + forwardingCore);
        }
        String prefix = Peers.uniqueName("lv");
        String vdev = role == Role.FRONTEND
                ? "net_virtio_user0,path=" + socket + ",queues=" + queues
                : "net_vhost0,iface=" + socket + ",queues=" + queues;
        if (!devargs.isEmpty()) {
            vdev += "," + devargs;
        }
        List<String> cmd = new ArrayList<>(List.of(stdbuf.toString(), "-o0", "-e0", exe.toString(),
                "-l", "0,1", "--main-lcore", String.valueOf(1 - forwardingCore),
                "--no-pci", "--no-huge", "-m", "256", "--file-prefix=" + prefix, "--log-level=lib.eal:warning",
                "--vdev", vdev, "--", "-i", "--nb-cores=1", "--total-num-mbufs=16384",
                "--rxq=" + queues, "--txq=" + queues));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        Testpmd t = new Testpmd(role + "-" + prefix, p, prefix);
        try {
            if (t.output.await(0, Pattern.compile(Pattern.quote(PROMPT)), START_TIMEOUT) == null) {
                throw new IllegalStateException(t.name + " gave no prompt within " + START_TIMEOUT.toSeconds()
                        + " s (exit " + (p.isAlive() ? "none" : p.exitValue()) + "):\n" + t.output.tail(4000));
            }
            // Without its port (a frontend that could not connect) testpmd still starts and prompts.
            if (t.output.text().contains("No probed ethernet devices")) {
                throw new IllegalStateException(t.name + " has no port (" + vdev + "):\n" + t.output.tail(4000));
            }
            return t;
        } catch (RuntimeException | InterruptedException e) {
            t.close();
            throw e;
        }
    }

    /** Sends one command and waits for the prompt after it; returns what it printed. */
    public String command(String line) throws IOException, InterruptedException {
        long from = output.position();
        stdin.write((line + "\n").getBytes(StandardCharsets.US_ASCII));
        stdin.flush();
        ProcessOutput.MatchResultAt m = output.await(from, Pattern.compile(Pattern.quote(PROMPT)), COMMAND_TIMEOUT);
        if (m == null) {
            throw new IllegalStateException(name + ": no prompt after '" + line + "':\n" + output.tail(3000));
        }
        return output.between(from, m.end());
    }

    /** {@code set fwd MODE} (txonly, rxonly, mac, io, ...). */
    public void forward(String mode) throws IOException, InterruptedException {
        expect(command("set fwd " + mode), "Set " + mode + " packet forwarding mode");
    }

    /** {@code set txpkts LEN}: the length of txonly's frames, in bytes without the CRC. */
    public void txLength(int bytes) throws IOException, InterruptedException {
        String out = command("set txpkts " + bytes);
        if (out.contains("error") || out.contains("Bad")) {
            throw new IllegalStateException(name + ": set txpkts " + bytes + ": " + out);
        }
    }

    /** {@code start}: forwarding begins. */
    public void startForwarding() throws IOException, InterruptedException {
        expect(command("start"), "forwarding");
    }

    /** {@code start tx_first}: sends one burst per stream first, so a loop (mac, io) has frames to forward. */
    public void startTxFirst() throws IOException, InterruptedException {
        expect(command("start tx_first"), "forwarding");
    }

    /** {@code stop}: forwarding ends (the port stays up). */
    public void stopForwarding() throws IOException, InterruptedException {
        command("stop");
    }

    /** {@code show port stats all}, port 0. */
    public Stats stats() throws IOException, InterruptedException {
        String out = command("show port stats all");
        Matcher m = STATS_BLOCK.matcher(out);
        if (!m.find()) {
            throw new IllegalStateException(name + ": no statistics in:\n" + out);
        }
        String b = m.group(2);
        return new Stats(field(b, "RX-packets"), field(b, "RX-missed"), field(b, "RX-bytes"), field(b, "RX-errors"),
                field(b, "RX-nombuf"), field(b, "TX-packets"), field(b, "TX-errors"), field(b, "TX-bytes"));
    }

    /**
     * Polls the counters (every 100 ms) until {@code done} holds or {@code timeout} passes.
     *
     * @return the last counters read (check them: the wait may have timed out)
     */
    public Stats awaitStats(Predicate<Stats> done, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Stats s = stats();
        while (!done.test(s) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            s = stats();
        }
        return s;
    }

    private static long field(String block, String key) {
        Matcher m = Pattern.compile(Pattern.quote(key) + ":\\s*(\\d+)").matcher(block);
        if (!m.find()) {
            throw new IllegalStateException("no " + key + " in:\n" + block);
        }
        return Long.parseLong(m.group(1));
    }

    private void expect(String out, String what) {
        if (!out.contains(what)) {
            throw new IllegalStateException(name + ": expected '" + what + "' in:\n" + out);
        }
    }

    /** Waits (bounded) until testpmd printed {@code regex} after it started; for events like link up. */
    public boolean awaitOutput(String regex, Duration timeout) throws InterruptedException {
        return output.await(0, Pattern.compile(regex), timeout) != null;
    }

    /** Everything printed so far (for failure messages). */
    public String log() {
        return output.text();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** {@code quit}, then SIGTERM, then SIGKILL, each with a bounded wait; removes DPDK's runtime files. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                try {
                    stdin.write("quit\n".getBytes(StandardCharsets.US_ASCII));
                    stdin.flush();
                } catch (IOException ignored) {
                    // Its stdin is already closed: the signals below still end it.
                }
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroy();
                    if (!process.waitFor(3, TimeUnit.SECONDS)) {
                        process.destroyForcibly();
                        process.waitFor(5, TimeUnit.SECONDS);
                    }
                }
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            Peers.deleteTree(Path.of("/var/run/dpdk", filePrefix));
        }
    }
}
