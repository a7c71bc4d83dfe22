package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.scenario.DataPathRun;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vmm.virtio.RingLayout;
import dev.loomvisor.vhost.net.VmmBackend;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The options every measuring command shares. Values are checked in {@link #validate}, so a wrong one
 * gets one line naming the option and what it accepts, and exit status 2.
 */
public final class CommonOptions {

    /** Frame sizes the data path takes: a minimal Ethernet frame up to a 9 KiB jumbo frame. */
    public static final int MIN_FRAME = 64;
    public static final int MAX_FRAME = 9216;
    /** VMs of the emulated data path: the L2 switch numbers its ports in 16 bits. */
    public static final int MAX_VMS = 65_534;
    /** VMs of the vhost-user commands: each ring's kick fd is an epoll registration of one loop. */
    public static final int MAX_VHOST_USER_VMS = 64;
    /** The largest split virtqueue (virtio 1.2 §2.7: Queue Size is at most 32768). */
    public static final int MAX_QUEUE_SIZE = 32_768;
    /** Queue pairs per VM: a multiqueue tap's most (the emulated switch port has a queue per pair). */
    public static final int MAX_QUEUES = dev.loomvisor.bench.scenario.VmLab.MAX_QUEUES;
    /** The slowest rate per flow: one frame every 100 s. */
    public static final double MIN_RATE = 0.01;

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    @Option(names = "--models", split = ",", paramLabel = "MODEL",
            description = "Worker models to compare (default: all): user-worker, user-worker-platform, kthread, "
                    + "kthread-virtual, kthread-pool.")
    List<String> models = new ArrayList<>(WorkerModel.names());

    @Option(names = "--vms", paramLabel = "N", description = "VMs, in pairs that exchange frames (default: ${DEFAULT-VALUE}).",
            defaultValue = "4")
    int vms;

    @Option(names = "--queues", paramLabel = "N", defaultValue = "1",
            description = "Queue pairs per VM, 1.." + MAX_QUEUES + " (default: ${DEFAULT-VALUE}); more than 1: MQ "
                    + "through the control queue, a vCPU, a vhost-net and a flow per pair.")
    int queues;

    @Option(names = "--ring", split = ",", paramLabel = "LAYOUT",
            description = "Virtqueue layouts: split, packed, or both (split,packed), each run per worker model, "
                    + "interleaved (default: split).")
    List<String> rings = new ArrayList<>(List.of(RingLayout.SPLIT.layoutName()));
    @Option(names = "--vring-workers", paramLabel = "LAYOUT", defaultValue = "pair",
            description = "Workers per queue pair: pair (the pair's vhost-net default worker runs both rings) or "
                    + "virtqueue (the TX ring gets its own through VHOST_NEW_WORKER where the model allows it: "
                    + "user-worker models; kthread models keep one per pair) (default: ${DEFAULT-VALUE}).")
    String vringWorkers;

    @Option(names = "--frame-size", split = ",", paramLabel = "BYTES",
            description = "Frame sizes in bytes, " + MIN_FRAME + ".." + MAX_FRAME + " (default: 64,1500).")
    List<Integer> frameSizes = new ArrayList<>(List.of(64, 1500));

    @Option(names = "--duration", paramLabel = "TIME", converter = Durations.class, defaultValue = "1s",
            description = "Measured time per model, frame size and repeat (default: ${DEFAULT-VALUE}).")
    Duration duration;

    @Option(names = "--warmup", paramLabel = "TIME", converter = Durations.class, defaultValue = "300ms",
            description = "Unmeasured warm-up before each measurement (default: ${DEFAULT-VALUE}).")
    Duration warmup;

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "3",
            description = "Repeats; models are interleaved in a different order each repeat (default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--rate", paramLabel = "FPS", converter = Rates.class,
            description = "Open-loop rate in frames per second per flow, e.g. 10k, or 0.5 for mostly idle VMs (latency commands).")
    Double rate;

    @Option(names = "--queue-size", paramLabel = "N",
            description = "Entries of each virtqueue, a power of two from 2 to " + MAX_QUEUE_SIZE + " (default: the driver's, 256).")
    Integer queueSize;

    @Option(names = "--rx-buffers", paramLabel = "N",
            description = "RX buffers each guest keeps posted, 1 to the queue size (default: the driver's).")
    Integer rxBuffers;

    @Option(names = "--tx-buffers", paramLabel = "N",
            description = "TX buffers each guest keeps in flight, 1 to the queue size (default: the driver's).")
    Integer txBuffers;

    @Option(names = "--busy-poll", paramLabel = "MICROS", defaultValue = "0",
            description = "Busy-poll each ring this many microseconds before sleeping (default: 0, off).")
    long busyPollMicros;

    @Option(names = "--out", paramLabel = "DIR",
            description = "Write summary.json, .hgrm and .hlog files per model and latency.png here.")
    Path out;

    @Option(names = "--journal", paramLabel = "DIR", defaultValue = "loomvisor-runs",
            description = "Run journal directory (default: ${DEFAULT-VALUE}).")
    Path journal;

    @Option(names = "--json", description = "Print JSON instead of a table.")
    boolean json;

    @Option(names = "--quiet", description = "No progress line.")
    boolean quiet;

    @CommandLine.Mixin
    PcapOptions.Switch pcap;

    /** Checks every value; throws a one-line ParameterException naming the option and what it accepts. */
    public void validate() {
        var cmd = mixee.commandLine();
        if (models.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "--models: give at least one of " + String.join(", ", WorkerModel.names()));
        }
        for (String m : models) {
            if (!WorkerModel.names().contains(m)) {
                throw new CommandLine.ParameterException(cmd,
                        "--models: unknown model '" + m + "'; allowed: " + String.join(", ", WorkerModel.names()));
            }
        }
        if (models.stream().distinct().count() != models.size()) {
            throw new CommandLine.ParameterException(cmd, "--models: a model is named twice");
        }
        String ringsAllowed = String.join(", ", RingLayout.names()) + ", or both as split,packed";
        if (rings.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "--ring: give a layout: " + ringsAllowed);
        }
        for (String r : rings) {
            if (RingLayout.byName(r) == null) {
                throw new CommandLine.ParameterException(cmd,
                        "--ring: unknown layout '" + r + "'; allowed: " + ringsAllowed);
            }
        }
        if (rings.stream().distinct().count() != rings.size()) {
            throw new CommandLine.ParameterException(cmd, "--ring: a layout is named twice; allowed: " + ringsAllowed);
        }
        if (vms < 2 || vms > MAX_VMS || vms % 2 != 0) {
            throw new CommandLine.ParameterException(cmd,
                    "--vms: " + vms + " is not allowed; give an even number of VMs from 2 to " + MAX_VMS);
        }
        if (queues < 1 || queues > MAX_QUEUES) {
            throw new CommandLine.ParameterException(cmd,
                    "--queues: " + queues + " is not allowed; give 1 to " + MAX_QUEUES + " queue pairs per VM");
        }
        if ((long) vms * queues > MAX_VMS) {
            throw new CommandLine.ParameterException(cmd, "--queues: " + vms + " VMs x " + queues
                    + " queue pairs is more than " + MAX_VMS + " pairs in all (each is a vCPU and a vhost-net)");
        }
        if (!vringWorkers.equals("pair") && !vringWorkers.equals("virtqueue")) {
            throw new CommandLine.ParameterException(cmd,
                    "--vring-workers: '" + vringWorkers + "' is not allowed; give pair or virtqueue");
        }
        for (int s : frameSizes) {
            if (s < MIN_FRAME || s > MAX_FRAME) {
                throw new CommandLine.ParameterException(cmd,
                        "--frame-size: " + s + " is out of range; allowed " + MIN_FRAME + " to " + MAX_FRAME + " bytes");
            }
        }
        if (duration.isNegative() || duration.isZero() || duration.compareTo(Duration.ofHours(1)) > 0) {
            throw new CommandLine.ParameterException(cmd, "--duration: must be more than 0 and at most 1h");
        }
        if (warmup.isNegative() || warmup.compareTo(Duration.ofHours(1)) > 0) {
            throw new CommandLine.ParameterException(cmd, "--warmup: must be 0 to 1h");
        }
        if (repeat < 1 || repeat > 1000) {
            throw new CommandLine.ParameterException(cmd, "--repeat: " + repeat + " is not allowed; give 1 to 1000");
        }
        if (rate != null && !(rate >= MIN_RATE && rate <= 100_000_000L)) {
            throw new CommandLine.ParameterException(cmd, "--rate: " + Rates.format(rate)
                    + " is not allowed; give " + MIN_RATE + " to 100m frames per second");
        }
        if (queueSize != null && (queueSize < 2 || queueSize > MAX_QUEUE_SIZE || Integer.bitCount(queueSize) != 1)) {
            throw new CommandLine.ParameterException(cmd, "--queue-size: " + queueSize
                    + " is not allowed; give a power of two from 2 to " + MAX_QUEUE_SIZE);
        }
        int ring = queueSize == null ? DataPathRun.Scale.DEFAULT_QUEUE_SIZE : queueSize;
        if (rxBuffers != null && (rxBuffers < 1 || rxBuffers > ring)) {
            throw new CommandLine.ParameterException(cmd, "--rx-buffers: " + rxBuffers
                    + " is not allowed; give 1 to the queue size, " + ring);
        }
        if (txBuffers != null && (txBuffers < 1 || txBuffers > ring)) {
            throw new CommandLine.ParameterException(cmd, "--tx-buffers: " + txBuffers
                    + " is not allowed; give 1 to the queue size, " + ring);
        }
        if (busyPollMicros < 0 || busyPollMicros > 1_000_000) {
            throw new CommandLine.ParameterException(cmd, "--busy-poll: " + busyPollMicros + " is not allowed; give 0 (off) to 1000000 microseconds");
        }
    }

    /** The ring and buffer sizes the data path is asked for (0 = the driver's default), on the first layout. */
    public DataPathRun.Scale scale() {
        return scale(ringLayouts().getFirst());
    }

    /** As {@link #scale()}, on the ring layout {@code ring}. */
    public DataPathRun.Scale scale(RingLayout ring) {
        return new DataPathRun.Scale(queueSize == null ? 0 : queueSize, rxBuffers == null ? 0 : rxBuffers,
                txBuffers == null ? 0 : txBuffers, ring, queues, vringWorkerLayout());
    }

    /** The ring layouts to run, in the order given. */
    public List<RingLayout> ringLayouts() {
        return rings.stream().map(RingLayout::byName).toList();
    }

    /** The --vring-workers layout (after {@link #validate}). */
    public VmmBackend.VringWorkers vringWorkerLayout() {
        return vringWorkers.equals("virtqueue") ? VmmBackend.VringWorkers.PER_VIRTQUEUE
                : VmmBackend.VringWorkers.PER_PAIR;
    }

    public List<WorkerModel> workerModels() {
        return models.stream().map(WorkerModel::byName).toList();
    }
}
