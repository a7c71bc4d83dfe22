package dev.loomvisor.bench.jmh;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The vhost-net data path with the sink, generator and echo backends, one frame per op: the benchmark thread is
 * a polling guest (as a DPDK virtio-user frontend is: interrupts off, kicks only when the device asks for them)
 * and a vhost worker of the chosen model runs the real TX and RX handlers with notifications, so that
 * {@code -prof gc} reports the bytes allocated per frame by every thread, the worker's included.
 *
 * <pre>
 * scripts/jmh VhostNetBenchmark -prof gc                     # sink, gen, echo; 64 and 1500 B
 * scripts/jmh VhostNetBenchmark -p model=user-worker -prof gc
 * scripts/jmh VhostNetBenchmark -p busyPollUs=50             # the rings busy-poll
 * </pre>
 *
 * <p>sink: the guest transmits, the TX handler hands each frame to a {@link SinkBackend}. gen: a
 * {@link GeneratorBackend} fills the guest's RX buffers. echo: an {@link EchoBackend} returns each transmitted
 * frame on RX, at most {@link #WINDOW} in flight. Rings of 256, MRG_RXBUF and EVENT_IDX, as a Linux guest asks.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
public class VhostNetBenchmark {

    static final int QUEUE = 256;
    static final int SLOT = 2048;
    /** Buffers made available per avail.idx publication, as a frontend's burst. */
    static final int BURST = 32;
    /** Echo frames in flight at most. */
    static final int WINDOW = 128;
    static final long BASE = 0x100000;
    static final long RX_RING = BASE;
    static final long TX_RING = BASE + 0x4000;
    static final long RX_DATA = BASE + 0x10000;
    static final long TX_DATA = RX_DATA + (long) QUEUE * SLOT;
    static final long GUEST_MAC = Frames.localMac(1);
    static final long PEER_MAC = Frames.localMac(2);

    @Param({"64", "1500"})
    public int frameSize;

    @Param({"user-worker-platform"})
    public String model;

    /** VHOST_SET_VRING_BUSYLOOP_TIMEOUT of every ring, microseconds (0: notifications only). */
    @Param({"0"})
    public int busyPollUs;

    Kernel kernel;
    Process vmm;
    Task owner;
    WorkerFactory factory;
    GuestMemory memory;
    UnsafeBuffer mem;
    VhostNet sinkNet;
    VhostNet genNet;
    VhostNet echoNet;
    Guest sink;
    Guest gen;
    Guest echo;

    /** The guest side of one device: its two rings, kick notifiers and buffer bookkeeping. */
    final class Guest {
        final VhostNet net;
        final DriverQueue rx;
        final DriverQueue tx;
        final Notifier rxKick = new Notifier();
        final Notifier txKick = new Notifier();
        final UsedElement used = new UsedElement();
        int txUnpublished;
        int rxUnpublished;
        long txNext;
        int inFlight;

        Guest(VhostNet net, long ringBase, long rxData, long txData) throws ErrnoException {
            this.net = net;
            var d = net.device();
            d.setOwner(owner);
            d.setFeatures(owner, NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX);
            d.setMemTable(owner, memory);
            rx = ring(VirtioNet.RX, ringBase, rxKick);
            tx = ring(VirtioNet.TX, ringBase + 0x2000 * 4, txKick);
            rx.disableInterrupts();
            tx.disableInterrupts();
            this.rxData = rxData;
            this.txData = txData;
        }

        final long rxData;
        final long txData;

        private DriverQueue ring(int index, long base, Notifier kick) throws ErrnoException {
            long avail = base + SplitRing.descTableSize(QUEUE);
            long used = base + 0x2000;
            var d = net.device();
            d.setVringNum(owner, index, QUEUE);
            d.setVringAddr(owner, index, base, avail, used);
            d.setVringKick(owner, index, kick);
            d.setVringCall(owner, index, new Notifier());
            d.setVringErr(owner, index, new Notifier());
            d.setVringBusyloopTimeout(owner, index, busyPollUs);
            return new DriverQueue(memory, QUEUE, base, avail, used, true);
        }

        /** Posts every RX buffer once. */
        void fillRx() {
            for (int i = 0; i < QUEUE; i++) {
                rx.add(rxData + (long) i * SLOT, SLOT, true, i);
            }
            if (rx.publishAndCheckKick()) {
                rxKick.signal();
            }
        }

        /** Writes the frame each TX slot carries, header first. */
        void prepareTx(int size) {
            for (int i = 0; i < QUEUE; i++) {
                int off = (int) (txData - BASE) + i * SLOT;
                mem.setMemory(off, VirtioNetHeader.SIZE, (byte) 0);
                int f = off + VirtioNetHeader.SIZE;
                Frames.writeMac(mem, f + Frames.DST_OFFSET, PEER_MAC);
                Frames.writeMac(mem, f + Frames.SRC_OFFSET, GUEST_MAC);
                mem.putShort(f + Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
                for (int k = Frames.ETH_HEADER_LENGTH; k < size; k++) {
                    mem.putByte(f + k, (byte) k);
                }
            }
        }

        /** Adds one TX frame, reaping completions when the ring is full; publishes a burst at a time. */
        void send(int size) {
            if (tx.freeCount() == 0) {
                publishTx();
                while (!reapTx()) {
                    Thread.onSpinWait();
                }
            }
            int slot = (int) (txNext++ & (QUEUE - 1));
            tx.add(txData + (long) slot * SLOT, VirtioNetHeader.SIZE + size, false, slot);
            if (++txUnpublished == BURST) {
                publishTx();
            }
        }

        void publishTx() {
            if (txUnpublished > 0) {
                txUnpublished = 0;
                if (tx.publishAndCheckKick()) {
                    txKick.signal();
                }
            }
        }

        boolean reapTx() {
            boolean any = false;
            while (tx.reap(used)) {
                any = true;
            }
            return any;
        }

        /** Takes one received frame and gives its buffer back; spins (publishing what waits) until one comes. */
        int receive() {
            while (!rx.reap(used)) {
                publishTx();
                publishRx();
                reapTx();
                Thread.onSpinWait();
            }
            int len = used.len();
            rx.add(rxData + used.cookie() * SLOT, SLOT, true, used.cookie());
            if (++rxUnpublished == BURST) {
                publishRx();
            }
            return len;
        }

        void publishRx() {
            if (rxUnpublished > 0) {
                rxUnpublished = 0;
                if (rx.publishAndCheckKick()) {
                    rxKick.signal();
                }
            }
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        kernel = new Kernel();
        vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        owner = vmm.mainTask();
        factory = WorkerModel.byName(model).factory(kernel);
        memory = GuestMemory.anonymous(BASE, 16 << 20);
        mem = memory.region(0).buffer();
        long per = 4L << 20;
        sinkNet = VhostNet.open(owner, factory);
        genNet = VhostNet.open(owner, factory);
        echoNet = VhostNet.open(owner, factory);
        sink = new Guest(sinkNet, RX_RING, RX_DATA, TX_DATA);
        gen = new Guest(genNet, RX_RING + per, RX_DATA + per, TX_DATA + per);
        echo = new Guest(echoNet, RX_RING + 2 * per, RX_DATA + 2 * per, TX_DATA + 2 * per);
        attach(sink, new SinkBackend(), new SinkBackend());
        attach(gen, new GeneratorBackend(PEER_MAC, GUEST_MAC, frameSize, Long.MAX_VALUE), new SinkBackend());
        EchoBackend e = new EchoBackend(PEER_MAC, 0x0a000001);
        attach(echo, e, e);
        for (Guest g : new Guest[] {sink, gen, echo}) {
            g.prepareTx(frameSize);
            g.fillRx();
        }
    }

    private void attach(Guest g, NetBackend rx, NetBackend tx) throws ErrnoException {
        g.net.setBackend(owner, VirtioNet.RX, rx);
        g.net.setBackend(owner, VirtioNet.TX, tx);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        sinkNet.close();
        genNet.close();
        echoNet.close();
        vmm.exit();
        factory.close();
        memory.close();
    }

    /** One frame from the guest into the sink backend. */
    @Benchmark
    public long sink() {
        sink.send(frameSize);
        return sink.txNext;
    }

    /** One generated frame into the guest's RX ring. */
    @Benchmark
    public int gen() {
        return gen.receive();
    }

    /** One frame out and (up to {@link #WINDOW} frames later) one frame back. */
    @Benchmark
    public int echo() {
        Guest g = echo;
        g.send(frameSize);
        if (++g.inFlight < WINDOW) {
            return 0;
        }
        g.inFlight--;
        return g.receive();
    }
}
