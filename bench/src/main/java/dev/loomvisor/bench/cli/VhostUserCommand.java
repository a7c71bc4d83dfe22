package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.scenario.VmLab;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.Inet;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.backend.PcapBackend;
import dev.loomvisor.vhost.backend.PcapWriter;
import dev.loomvisor.vhost.backend.TapBackend;
import dev.loomvisor.vhost.user.BackendFactory;
import dev.loomvisor.vhost.user.CloseReason;
import dev.loomvisor.vhost.user.QueueStats;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.driver.QueuePairDriver;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vhost-user}: serves real virtio frontends (QEMU, DPDK's virtio-user) on a UNIX socket with
 * Loomvisor's vhost-net data path, every queue pair of every session on a backend of the chosen mode.
 * Prints a stats line per interval on stderr, one line per session opened and closed (with its reason),
 * and a summary on stdout when it ends: after {@code --duration}, or on SIGINT/SIGTERM (a shutdown hook).
 */
@Command(name = "vhost-user", mixinStandardHelpOptions = true,
        description = "Serves vhost-user frontends (QEMU, DPDK virtio-user) on a UNIX socket: sink counts what they "
                + "send, gen sends to them as fast as they take it, echo returns every frame and answers ARP and "
                + "ping for --ip, switch puts each queue pair on an L2 switch with --vms emulated VMs that echo, "
                + "tap plugs the frontend into the host's network stack through TAP interface --tap. "
                + "Stats on stderr every --stats-interval; a summary on stdout at the end (--duration, or "
                + "SIGINT/SIGTERM).")
public final class VhostUserCommand implements Callable<Integer> {

    /** What the backend of each queue pair does with frames. */
    enum Mode { SINK, GEN, ECHO, SWITCH, TAP }

    static final int MAX_QUEUES = 8;
    static final int MIN_GEN_FRAME = GeneratorBackend.SEQUENCE_OFFSET + 8;
    private static final Duration SUMMARY_WAIT = Duration.ofSeconds(10);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--socket", paramLabel = "PATH", required = true,
            description = "The UNIX socket to listen on (a stale one is replaced).")
    Path socket;

    @Option(names = "--mode", paramLabel = "MODE", required = true,
            description = "sink, gen, echo, switch or tap.")
    String mode;

    @Option(names = "--model", paramLabel = "MODEL", defaultValue = "user-worker",
            description = "Worker model of the sessions' devices: user-worker, user-worker-platform, kthread, "
                    + "kthread-virtual, kthread-pool (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--queues", paramLabel = "N", defaultValue = "1",
            description = "Queue pairs a frontend may use (MQ), 1.." + MAX_QUEUES + " (default: ${DEFAULT-VALUE}).")
    int queues;

    @Option(names = "--ip", paramLabel = "IPV4", defaultValue = "198.51.100.1",
            description = "echo: the address it answers ARP and ping for (default: ${DEFAULT-VALUE}).")
    String ip;

    @Option(names = "--mac", paramLabel = "MAC", defaultValue = "02:00:00:00:00:01",
            description = "The backend's own unicast MAC: echo's answers and gen's frames come from it "
                    + "(default: ${DEFAULT-VALUE}).")
    String mac;

    @Option(names = "--frame-size", paramLabel = "BYTES",
            description = "gen: length of the frames sent (default 64); sink: the length every frame should "
                    + "have (others are counted as wrong_length; default: any).")
    Integer frameSize;

    @Option(names = "--vms", paramLabel = "N", defaultValue = "2",
            description = "switch: emulated VMs on the switch, each echoing what reaches it, 1..64 (default: ${DEFAULT-VALUE}).")
    int vms;

    @Option(names = "--busy-poll", paramLabel = "MICROS", defaultValue = "0",
            description = "Busy-poll each ring this many microseconds before sleeping on its kick "
                    + "(VHOST_SET_VRING_BUSYLOOP_TIMEOUT), each ring on a worker of its own where the model "
                    + "allows one (default: 0, off).")
    long busyPollMicros;

    @Option(names = "--max-sessions", paramLabel = "N", defaultValue = "" + VhostUserServer.Config.DEFAULT_MAX_SESSIONS,
            description = "Sessions served at once, 1.." + VhostUserServer.Config.MAX_SESSIONS + "; a connection beyond "
                    + "them is closed at once and logged as refused (default: ${DEFAULT-VALUE}).")
    int maxSessions;

    @Option(names = "--duration", paramLabel = "TIME", converter = Durations.class,
            description = "Serve this long, then print the summary and exit (default: until SIGINT or SIGTERM).")
    Duration duration;

    @Option(names = "--stats-interval", paramLabel = "TIME", converter = Durations.class, defaultValue = "1s",
            description = "Time between stats lines on stderr (default: ${DEFAULT-VALUE}).")
    Duration statsInterval;

    @CommandLine.Mixin
    PcapOptions pcapOptions;
    private PcapWriter pcap;

    @CommandLine.Mixin
    TapOptions tapOptions;
    private TapBackend tap;

    @Option(names = "--quiet", description = "No stats lines (session lines and the summary still print).")
    boolean quiet;

    private Mode parsedMode;
    private long hostMac;
    private int hostIp;

    @Override
    public Integer call() throws Exception {
        validate();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        WorkerModel workerModel = WorkerModel.byName(model);
        Kernel kernel = new Kernel();
        Tally tally = new Tally(err);
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch summarised = new CountDownLatch(1);
        // SIGINT/SIGTERM run the hooks: this one lets the serving loop below print the summary and close the
        // server, and holds the JVM's exit (bounded) until it has.
        Thread hook = Thread.ofPlatform().name("vhost-user-shutdown").unstarted(() -> {
            stop.countDown();
            try {
                summarised.await(SUMMARY_WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException ignored) {
                // Exiting anyway.
            }
        });
        try {
            tap = parsedMode == Mode.TAP ? tapOptions.open() : null;
        } catch (IOException e) {
            err.println("vhost-user: " + e.getMessage());
            err.flush();
            return 1;
        }
        try (PcapWriter capture = pcap = pcapOptions.open(); Backends backends = new Backends(kernel, workerModel)) {
            var config = VhostUserServer.Config.defaults().withModel(workerModel).withKernel(kernel)
                    .withMaxQueuePairs(queues).withBackends(backends).withBusyPollMicros(busyPollMicros)
                    .withMaxSessions(maxSessions);
            VhostUserServer server;
            try {
                server = VhostUserServer.start(socket, config, tally);
            } catch (IOException | RuntimeException e) {
                err.println("vhost-user: cannot listen on " + socket + ": " + e.getMessage());
                err.flush();
                return 1;
            }
            Runtime.getRuntime().addShutdownHook(hook);
            long start = System.nanoTime();
            try {
                tally.print(String.format(Locale.ROOT, "vhost-user: listening on %s, mode %s, model %s, %d queue pair%s, "
                        + "at most %d sessions", socket, mode, model, queues, queues == 1 ? "" : "s", maxSessions));
                serve(stop, start, tally);
                // Every session ends (SERVER_CLOSED) before the summary, so its counts are final and exact.
                server.close();
                out.print(summary(server.totals(), tally, backends, (System.nanoTime() - start) / 1e9));
                out.flush();
            } finally {
                server.close();
                summarised.countDown();
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // The hook is what woke us; it returns now that the summary is out.
                }
            }
        }
        return 0;
    }

    /** Prints a stats line per interval until stopped or until the duration has passed. */
    private void serve(CountDownLatch stop, long start, Tally tally) throws InterruptedException {
        long end = duration == null ? Long.MAX_VALUE : start + duration.toNanos();
        long interval = statsInterval.toNanos();
        long next = start + interval;
        Totals last = tally.totals();
        long lastAt = start;
        while (true) {
            long now = System.nanoTime();
            long wake = Math.min(next, end);
            if (wake > now && stop.await(wake - now, TimeUnit.NANOSECONDS)) {
                return;
            }
            now = System.nanoTime();
            if (now >= next) {
                Totals t = tally.totals();
                if (!quiet) {
                    tally.print(statsLine((now - start) / 1e9, tally.openSessions(), t, last, (now - lastAt) / 1e9));
                }
                last = t;
                lastAt = now;
                next += interval * Math.max(1, (now - next) / interval + 1);
            }
            if (now >= end) {
                return;
            }
        }
    }

    /**
     * {@code t=12.0s sessions=1 tx=6.021Mfps/385.3MB/s rx=... tx_frames=N rx_frames=N drops=N}: tx is what
     * frontends sent (their TX rings), rx what they received; the rates over the last interval, the frame
     * counts since the start (scripts difference them over their own window).
     */
    static String statsLine(double t, int sessions, Totals now, Totals before, double seconds) {
        double s = Math.max(seconds, 1e-9);
        return String.format(Locale.ROOT,
                "vhost-user: t=%.1fs sessions=%d tx=%.3fMfps/%.1fMB/s rx=%.3fMfps/%.1fMB/s tx_frames=%d rx_frames=%d drops=%d",
                t, sessions, (now.txFrames - before.txFrames) / s / 1e6, (now.txBytes - before.txBytes) / s / 1e6,
                (now.rxFrames - before.rxFrames) / s / 1e6, (now.rxBytes - before.rxBytes) / s / 1e6,
                now.txFrames, now.rxFrames, now.drops);
    }

    private String summary(VhostUserServer.Totals server, Tally tally, Backends backends, double seconds) {
        Totals t = tally.totals();
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "vhost-user summary: mode %s, model %s, busy-poll %d us, %.1f s%n", mode,
                model, busyPollMicros, seconds));
        b.append(String.format(Locale.ROOT, "sessions: %d opened, %d closed, %d open%s; %d refused%s%n", server.opened(),
                server.closed(), server.open(), server.closeCauses().isEmpty() ? "" : " " + server.closeCauses(),
                server.refused(), server.refuseCauses().isEmpty() ? "" : " " + server.refuseCauses()));
        b.append("frames: ").append(server.closedAccount()).append(System.lineSeparator());
        b.append(String.format(Locale.ROOT, "tx (frontend -> backend): %d frames, %d bytes, %.3f Mfps average%n",
                t.txFrames, t.txBytes, t.txFrames / Math.max(seconds, 1e-9) / 1e6));
        b.append(String.format(Locale.ROOT, "rx (backend -> frontend): %d frames, %d bytes, %.3f Mfps average%n",
                t.rxFrames, t.rxBytes, t.rxFrames / Math.max(seconds, 1e-9) / 1e6));
        b.append(String.format(Locale.ROOT, "drops: %d, ring errors: %d%n", t.drops, t.ringErrors));
        Map<String, Long> counters = backends.counters();
        if (!counters.isEmpty()) {
            b.append(mode).append(':');
            counters.forEach((k, v) -> b.append(' ').append(k).append('=').append(v));
            b.append(System.lineSeparator());
        }
        return b.toString();
    }

    /** Checks every value; a wrong one gets one line naming the option and what it accepts (exit 2). */
    void validate() {
        var cmd = spec.commandLine();
        pcapOptions.validate();
        try {
            parsedMode = Mode.valueOf(mode.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, "--mode: unknown mode '" + mode + "'; allowed: sink, gen, echo, switch, tap");
        }
        if (!WorkerModel.names().contains(model)) {
            throw new CommandLine.ParameterException(cmd,
                    "--model: unknown model '" + model + "'; allowed: " + String.join(", ", WorkerModel.names()));
        }
        tapOptions.validate(parsedMode == Mode.TAP, queues);
        if (queues < 1 || queues > MAX_QUEUES) {
            throw new CommandLine.ParameterException(cmd, "--queues: " + queues + " is not allowed; give 1 to " + MAX_QUEUES);
        }
        try {
            hostIp = Inet.parseIpv4(ip);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, "--ip: '" + ip + "' is not an IPv4 address like 198.51.100.1");
        }
        long m = parseMac(mac);
        if (m < 0 || Frames.isGroup(m) || m == 0) {
            throw new CommandLine.ParameterException(cmd,
                    "--mac: '" + mac + "' is not a unicast MAC like 02:00:00:00:00:01");
        }
        hostMac = m;
        if (frameSize != null && (frameSize < MIN_GEN_FRAME || frameSize > FrameLimits.MAX_FRAME)) {
            throw new CommandLine.ParameterException(cmd, "--frame-size: " + frameSize + " is out of range; allowed "
                    + MIN_GEN_FRAME + " to " + FrameLimits.MAX_FRAME + " bytes");
        }
        if (vms < 1 || vms > CommonOptions.MAX_VHOST_USER_VMS) {
            throw new CommandLine.ParameterException(cmd, "--vms: " + vms + " is not allowed; give 1 to " + CommonOptions.MAX_VHOST_USER_VMS);
        }
        if (maxSessions < 1 || maxSessions > VhostUserServer.Config.MAX_SESSIONS) {
            throw new CommandLine.ParameterException(cmd, "--max-sessions: " + maxSessions + " is not allowed; give 1 to "
                    + VhostUserServer.Config.MAX_SESSIONS);
        }
        if (busyPollMicros < 0 || busyPollMicros > 1_000_000) {
            throw new CommandLine.ParameterException(cmd,
                    "--busy-poll: " + busyPollMicros + " is not allowed; give 0 (off) to 1000000 microseconds");
        }
        if (duration != null && (duration.isNegative() || duration.isZero() || duration.compareTo(Duration.ofDays(7)) > 0)) {
            throw new CommandLine.ParameterException(cmd, "--duration: must be more than 0 and at most 7 days");
        }
        if (statsInterval.compareTo(Duration.ofMillis(100)) < 0 || statsInterval.compareTo(Duration.ofHours(1)) > 0) {
            throw new CommandLine.ParameterException(cmd, "--stats-interval: must be 100ms to 1h");
        }
        if (socket.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 107) {
            throw new CommandLine.ParameterException(cmd, "--socket: a UNIX socket path is at most 107 bytes");
        }
    }

    /** "02:00:00:00:00:01" as a 48-bit value, or -1. */
    static long parseMac(String text) {
        String[] parts = text.split(":", -1);
        if (parts.length != 6) {
            return -1;
        }
        long v = 0;
        for (String p : parts) {
            if (p.length() != 2 || !p.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                return -1;
            }
            v = (v << 8) | Integer.parseInt(p, 16);
        }
        return v;
    }

    /** Frame and byte counts summed over every session's vrings. */
    record Totals(long txFrames, long txBytes, long rxFrames, long rxBytes, long drops, long ringErrors) {

        static final Totals ZERO = new Totals(0, 0, 0, 0, 0, 0);

        Totals plus(List<QueueStats> stats) {
            long tf = txFrames, tb = txBytes, rf = rxFrames, rb = rxBytes, d = drops, e = ringErrors;
            for (QueueStats q : stats) {
                if (q.isRx()) {
                    rf += q.frames();
                    rb += q.bytes();
                } else {
                    tf += q.frames();
                    tb += q.bytes();
                }
                d += q.drops();
                e += q.ringErrors();
            }
            return new Totals(tf, tb, rf, rb, d, e);
        }
    }

    /**
     * Sessions and their counters. A closed session's final counters are folded into the closed total and
     * the session dropped from the open list under one lock, so a stats line never counts it twice or not
     * at all.
     */
    private static final class Tally implements VhostUserServer.Listener {

        private final PrintWriter err;
        private final ReentrantLock lock = new ReentrantLock();
        /** Session lines come from session threads, stats lines from the serving loop: one line at a time. */
        private final ReentrantLock printLock = new ReentrantLock();
        private final Set<VhostUserSession> open = new LinkedHashSet<>();
        private Totals closedTotals = Totals.ZERO;

        Tally(PrintWriter err) {
            this.err = err;
        }

        @Override
        public void opened(VhostUserSession session) {
            lock.lock();
            try {
                open.add(session);
            } finally {
                lock.unlock();
            }
            print("vhost-user: session " + session.id() + " opened");
        }

        @Override
        public void negotiated(VhostUserSession session, long features) {
            print("vhost-user: session " + session.id() + " ring " + session.ringLayout() + " (features 0x"
                    + Long.toHexString(features) + ")");
        }

        @Override
        public void closed(VhostUserSession session, CloseReason reason) {
            lock.lock();
            try {
                if (open.remove(session)) {
                    closedTotals = closedTotals.plus(session.stats());
                }
            } finally {
                lock.unlock();
            }
            print(String.format(Locale.ROOT, "vhost-user: session %d closed: %s (%s)", session.id(), reason,
                    session.account()));
        }

        @Override
        public void refused(CloseReason reason) {
            print("vhost-user: connection refused: " + reason);
        }

        void print(String line) {
            printLock.lock();
            try {
                err.println(line);
                err.flush();
            } finally {
                printLock.unlock();
            }
        }

        Totals totals() {
            lock.lock();
            try {
                Totals t = closedTotals;
                for (VhostUserSession s : open) {
                    t = t.plus(s.stats());
                }
                return t;
            } finally {
                lock.unlock();
            }
        }

        int openSessions() {
            lock.lock();
            try {
                return open.size();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Makes each queue pair's backend for the mode and keeps them for the summary's counters. In switch
     * mode it also owns the lab: the emulated VMs, their devices and the switch every pair gets a port on.
     */
    private final class Backends implements BackendFactory, AutoCloseable {

        /** Backends of open sessions; a closed one's counters are folded into {@link #retired} and it is let go. */
        private final Set<NetBackend> made = ConcurrentHashMap.newKeySet();
        /** In the enum order of the mode's counters (guarded by itself). */
        private final Map<String, Long> retired = new LinkedHashMap<>();
        private final VmLab lab;
        private final WorkerFactory labFactory;

        Backends(Kernel kernel, WorkerModel workerModel) throws ErrnoException {
            if (parsedMode != Mode.SWITCH) {
                lab = null;
                labFactory = null;
                return;
            }
            Process vmm = kernel.spawn("switch-lab", Credentials.root(), Rlimits.unlimited(), kernel.rootCgroup());
            labFactory = workerModel.factory(kernel);
            VmLab l = new VmLab(vmm, labFactory, VmLab.Options.defaults());
            try {
                for (int i = 0; i < vms; i++) {
                    // Sends nothing of its own: returns every frame to its sender.
                    l.addVm("vm" + i).driver().setEcho(QueuePairDriver.Echo.ALL);
                }
                for (var vm : l.vms()) {
                    vm.start();
                }
            } catch (ErrnoException | RuntimeException e) {
                l.close();
                labFactory.close();
                throw e;
            }
            lab = l;
        }

        @Override
        public NetBackend create(VhostUserSession session, int queuePair) {
            NetBackend b = switch (parsedMode) {
                case SINK -> new SinkBackend(frameSize == null ? 0 : frameSize);
                case GEN -> new GeneratorBackend(hostMac, Frames.BROADCAST, frameSize == null ? 64 : frameSize, Long.MAX_VALUE);
                case ECHO -> new EchoBackend(hostMac, hostIp);
                case SWITCH -> lab.switchboard().addPort("session" + session.id() + "-q" + queuePair);
                case TAP -> tap;
            };
            made.add(b);
            return pcap == null ? b : new PcapBackend(b, pcap);
        }

        @Override
        public void released(VhostUserSession session, int queuePair, NetBackend released) {
            NetBackend backend = released instanceof PcapBackend p ? p.inner() : released;
            if (made.remove(backend)) {
                synchronized (retired) {
                    fold(backend, retired);
                }
            }
        }

        private static void fold(NetBackend b, Map<String, Long> into) {
            Map<? extends Enum<?>, Long> snap = switch (b) {
                case SinkBackend s -> s.counters().snapshot();
                case GeneratorBackend g -> g.counters().snapshot();
                case EchoBackend e -> e.counters().snapshot();
                case L2Switch.Port p -> p.counters().snapshot();
                case TapBackend tb -> tb.counters().snapshot();
                default -> Map.of();
            };
            snap.forEach((k, v) -> into.merge(k.name().toLowerCase(Locale.ROOT), v, Long::sum));
        }

        /** The mode's own counters summed over every backend made (name to value). */
        Map<String, Long> counters() {
            Map<String, Long> sum;
            synchronized (retired) {
                sum = new LinkedHashMap<>(retired);
            }
            for (NetBackend b : made) {
                fold(b, sum);
            }
            if (lab != null) {
                long echoed = 0;
                long echoDropped = 0;
                for (var vm : lab.vms()) {
                    echoed += vm.stats().echoed();
                    echoDropped += vm.stats().echoDropped();
                }
                sum.put("vms_echoed", echoed);
                sum.put("vms_echo_dropped", echoDropped);
            }
            return sum;
        }

        @Override
        public void close() {
            if (tap != null) {
                tap.shutdown();
            }
            if (lab != null) {
                lab.close();
                labFactory.close();
            }
        }
    }
}
