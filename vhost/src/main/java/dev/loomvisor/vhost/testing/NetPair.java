package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.IdleStrategy;

/**
 * Two guests, each with a vhost-net device owned by one VMM process and served by one worker model, joined
 * by an {@link L2Switch}: the end-to-end scenario of the tests and the benchmark.
 *
 * <pre>
 *   guest a --TX ring--> vhost-net a --port a--> switch --port b queue--> vhost-net b --RX ring--> guest b
 *   (and the same the other way)
 * </pre>
 */
public final class NetPair implements AutoCloseable {

    /** How the pair is set up. */
    public record Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize,
                          long busyPollMicros, int switchQueueBytes, boolean virtualVcpus, IdleStrategy busyIdle) {

        /** 256-entry rings, EVENT_IDX and MRG_RXBUF on, 2 KiB RX buffers, no busy-poll, 256 KiB port queues. */
        public static Options defaults() {
            return new Options(256, true, true, 2048, 0, 1 << 18, true, null);
        }

        public Options withBusyPoll(long micros) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, micros, switchQueueBytes, virtualVcpus, busyIdle);
        }

        public Options withEventIdx(boolean on) {
            return new Options(queueSize, on, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes, virtualVcpus, busyIdle);
        }

        public Options withMrgRxbuf(boolean on, int rxBuffer) {
            return new Options(queueSize, eventIdx, on, rxBuffer, busyPollMicros, switchQueueBytes, virtualVcpus, busyIdle);
        }

        public Options withVirtualVcpus(boolean on) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes, on, busyIdle);
        }
    }

    /** What one run measured, per direction (a to b, b to a). */
    public record Result(long elapsedNanos, long sentAb, long receivedAb, long droppedAb, long sentBa,
                         long receivedBa, long droppedBa, long badChecksums, long reordered,
                         Map<String, Long> dropsByReason, boolean complete) {

        public long frames() {
            return receivedAb + receivedBa;
        }

        /** Received frames per second, both directions together. */
        public double framesPerSecond() {
            return frames() * 1e9 / elapsedNanos;
        }
    }

    private final Task owner;
    private final Options options;
    private final L2Switch sw;
    private final NetGuest[] guests = new NetGuest[2];
    private final VhostNet[] nets = new VhostNet[2];
    private final L2Switch.Port[] ports = new L2Switch.Port[2];

    private NetPair(Task owner, Options options) {
        this.owner = owner;
        this.options = options;
        this.sw = new L2Switch(options.switchQueueBytes(), 1024);
    }

    /**
     * Opens two vhost-net devices as {@code owner} with {@code factory}'s worker model, two guests, and wires
     * them through a switch. On failure everything opened so far is closed again.
     */
    public static NetPair open(Task owner, WorkerFactory factory, Options options) throws ErrnoException {
        NetPair p = new NetPair(owner, options);
        try {
            for (int i = 0; i < 2; i++) {
                NetGuest.Config cfg = new NetGuest.Config(options.queueSize(), options.eventIdx(),
                        options.mrgRxbuf(), options.rxBufferSize());
                p.guests[i] = new NetGuest("vm" + i, Frames.localMac(i + 1), cfg);
                p.nets[i] = VhostNet.open(owner, factory, null, options.busyIdle());
                p.nets[i].device().setOwner(owner);
                p.guests[i].wire(p.nets[i], owner);
                if (options.busyPollMicros() > 0) {
                    p.nets[i].device().setVringBusyloopTimeout(owner, VirtioNet.RX, options.busyPollMicros());
                    p.nets[i].device().setVringBusyloopTimeout(owner, VirtioNet.TX, options.busyPollMicros());
                }
                p.ports[i] = p.sw.addPort("vm" + i);
                p.nets[i].setBackend(owner, VirtioNet.RX, p.ports[i]);
                p.nets[i].setBackend(owner, VirtioNet.TX, p.ports[i]);
            }
            return p;
        } catch (ErrnoException | RuntimeException e) {
            p.close();
            throw e;
        }
    }

    public NetGuest guest(int i) {
        return guests[i];
    }

    public VhostNet net(int i) {
        return nets[i];
    }

    public L2Switch.Port port(int i) {
        return ports[i];
    }

    public L2Switch switchboard() {
        return sw;
    }

    /**
     * Sends {@code frames} frames of {@code length} bytes each way at once, back to back, and waits until
     * every frame is accounted for (received, or dropped with a counted reason) or {@code timeout} passes.
     * Counters are cumulative over runs; the result holds this run's deltas.
     */
    public Result run(int length, long frames, long timeout, TimeUnit unit) {
        long[] before = snapshot();
        long sentBefore0 = guests[0].sent();
        long sentBefore1 = guests[1].sent();
        long recvBefore0 = guests[0].received();
        long recvBefore1 = guests[1].received();
        long badBefore = guests[0].badChecksums() + guests[1].badChecksums();
        long reoBefore = guests[0].reordered() + guests[1].reordered();
        guests[0].plan(guests[1].mac(), length, sentBefore0 + frames, 0);
        guests[1].plan(guests[0].mac(), length, sentBefore1 + frames, 0);
        long start = System.nanoTime();
        for (NetGuest g : guests) {
            if (!g.isRunning()) {
                g.start(options.virtualVcpus());
            }
        }
        long deadline = start + unit.toNanos(timeout);
        boolean complete = false;
        while (System.nanoTime() - deadline < 0) {
            if (accounted(0, 1) && accounted(1, 0)) {
                complete = true;
                break;
            }
            if (guests[0].failure() != null || guests[1].failure() != null) {
                break;
            }
            LockSupport.parkNanos(200_000);
        }
        long elapsed = System.nanoTime() - start;
        long[] after = snapshot();
        Map<String, Long> reasons = new LinkedHashMap<>();
        String[] names = reasonNames();
        for (int i = 0; i < names.length; i++) {
            long d = after[i] - before[i];
            if (d != 0) {
                reasons.put(names[i], d);
            }
        }
        return new Result(elapsed,
                guests[0].sent() - sentBefore0, guests[1].received() - recvBefore1, dropped(0, 1) - dropsBefore(before, 0),
                guests[1].sent() - sentBefore1, guests[0].received() - recvBefore0, dropped(1, 0) - dropsBefore(before, 1),
                guests[0].badChecksums() + guests[1].badChecksums() - badBefore,
                guests[0].reordered() + guests[1].reordered() - reoBefore, reasons, complete);
    }

    /** What a timed run measured: frames and bytes the receiving guests got, and drops, in the window. */
    public record Measurement(long elapsedNanos, long frames, long bytes, long dropped, long badChecksums,
                              long reordered) {

        public double framesPerSecond() {
            return frames * 1e9 / elapsedNanos;
        }

        public double gbitPerSecond() {
            return bytes * 8.0 / elapsedNanos;
        }
    }

    /**
     * Streams {@code length}-byte frames from guest a to guest b (and back if {@code bothWays}) without end,
     * lets it settle for {@code warmupNanos}, counts what arrives during {@code measureNanos}, then stops
     * the guests. For benchmarks: nothing is asserted, the guests' checks are reported.
     */
    public Measurement measure(int length, boolean bothWays, long warmupNanos, long measureNanos) {
        for (NetGuest g : guests) {
            g.verifyPayload(false);
        }
        guests[0].plan(guests[1].mac(), length, Long.MAX_VALUE, 0);
        guests[1].plan(guests[0].mac(), length, bothWays ? Long.MAX_VALUE : 0, 0);
        for (NetGuest g : guests) {
            g.start(options.virtualVcpus());
        }
        LockSupport.parkNanos(warmupNanos);
        long f0 = guests[0].received() + guests[1].received();
        long b0 = guests[0].receivedBytes() + guests[1].receivedBytes();
        long d0 = dropped(0, 1) + dropped(1, 0);
        long t0 = System.nanoTime();
        long end = t0 + measureNanos;
        while (System.nanoTime() - end < 0) {
            LockSupport.parkNanos(end - System.nanoTime());
        }
        long t1 = System.nanoTime();
        long f1 = guests[0].received() + guests[1].received();
        long b1 = guests[0].receivedBytes() + guests[1].receivedBytes();
        long d1 = dropped(0, 1) + dropped(1, 0);
        stopGuests();
        return new Measurement(t1 - t0, f1 - f0, b1 - b0, d1 - d0,
                guests[0].badChecksums() + guests[1].badChecksums(), guests[0].reordered() + guests[1].reordered());
    }

    private boolean accounted(int from, int to) {
        NetGuest src = guests[from];
        return src.txDone() && guests[to].received() + dropped(from, to) == src.sent();
    }

    /** Every frame lost from guest {@code from} to guest {@code to}, by any counted reason. */
    public long dropped(int from, int to) {
        var ptx = ports[from].counters();
        var tx = nets[from].tx().counters();
        var rx = nets[to].rx().counters();
        return ptx.get(PortCounter.TX_DROP_QUEUE_FULL) + ptx.get(PortCounter.TX_DROP_RUNT)
                + ptx.get(PortCounter.TX_DROP_SAME_PORT) + ptx.get(PortCounter.TX_DROP_TOO_LONG)
                + ptx.get(PortCounter.TX_DROP_NO_PORT)
                + tx.get(RingCounter.DROP_BAD_HEADER) + tx.get(RingCounter.DROP_TOO_BIG)
                + rx.get(RingCounter.DROP_TOO_BIG) + rx.get(RingCounter.DROP_BAD_RX_CHAIN);
    }

    private static String[] reasonNames() {
        return new String[] {"a.switch.queue-full", "a.tx.bad-header", "a.tx.too-big", "b.rx.too-big",
                "b.switch.queue-full", "b.tx.bad-header", "b.tx.too-big", "a.rx.too-big"};
    }

    private long[] snapshot() {
        return new long[] {
            ports[0].counters().get(PortCounter.TX_DROP_QUEUE_FULL),
            nets[0].tx().counters().get(RingCounter.DROP_BAD_HEADER),
            nets[0].tx().counters().get(RingCounter.DROP_TOO_BIG),
            nets[1].rx().counters().get(RingCounter.DROP_TOO_BIG),
            ports[1].counters().get(PortCounter.TX_DROP_QUEUE_FULL),
            nets[1].tx().counters().get(RingCounter.DROP_BAD_HEADER),
            nets[1].tx().counters().get(RingCounter.DROP_TOO_BIG),
            nets[0].rx().counters().get(RingCounter.DROP_TOO_BIG),
            dropped(0, 1), dropped(1, 0)
        };
    }

    private static long dropsBefore(long[] before, int dir) {
        return before[8 + dir];
    }

    /** A one-line summary of one ring's counters, for reports. */
    public static String describe(VhostVirtqueue vq) {
        return "vq" + vq.index() + " " + vq.counters() + " kicks=" + vq.kicks();
    }

    /** Stops the guests' vCPUs (the devices stay up). */
    public void stopGuests() {
        for (NetGuest g : guests) {
            if (g != null) {
                g.requestStop();
            }
        }
        for (NetGuest g : guests) {
            if (g != null) {
                g.stop();
            }
        }
    }

    /** Stops the guests, releases both devices, frees guest memory. */
    @Override
    public void close() {
        stopGuests();
        for (VhostNet n : nets) {
            if (n != null) {
                n.close();
            }
        }
        for (NetGuest g : guests) {
            if (g != null) {
                g.close();
            }
        }
    }
}
