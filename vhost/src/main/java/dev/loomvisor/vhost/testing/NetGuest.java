package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Task;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A minimal guest virtio-net driver for vhost's tests and benchmarks: its own guest memory with an RX and a
 * TX split ring and buffer pools, and one vCPU thread that transmits numbered frames, keeps the RX ring
 * filled, and checks what arrives. It drives the rings only through vmm's {@link DriverQueue}, as a guest
 * kernel would, and talks to the device only through eventfds: a kick per ring, one shared interrupt.
 *
 * <p>Frame format: Ethernet header (dst, src, experimental EtherType), then at offset 14 the flow sequence
 * number, at 22 the send time ({@link System#nanoTime()}, or the intended one, see
 * {@link #stampIntendedSendTime}), at 30 the checksum ({@link Frames#checksum}) of
 * the bytes from 38 to the end, a fixed pattern. The receiver
 * checks the checksum and that sequence numbers only grow (drops leave gaps, reordering is an error).
 *
 * <p>The vCPU loop is NAPI-like: interrupts off while it finds work; when a round finds none, it turns them
 * on, re-checks, and waits on the interrupt eventfd. Allocation-free per frame.
 */
public final class NetGuest implements AutoCloseable {

    public static final int SEQ_OFFSET = 14;
    public static final int TIME_OFFSET = 22;
    public static final int CSUM_OFFSET = 30;
    public static final int PAYLOAD_OFFSET = 38;
    /** Shortest frame that carries the fields above. */
    public static final int MIN_FRAME = PAYLOAD_OFFSET;

    private static final long BASE = 0x1_0000L;
    private static final int BUFFER_SIZE = 2048;

    /** How the guest behaves. */
    public record Config(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize) {
        public Config {
            if (rxBufferSize > BUFFER_SIZE || rxBufferSize < 64) {
                throw new IllegalArgumentException("rx buffer size " + rxBufferSize);
            }
        }

        public static Config defaults() {
            return new Config(256, true, true, BUFFER_SIZE);
        }
    }

    private final String name;
    private final long mac;
    private final Config config;
    private final GuestMemory memory;
    private final UnsafeBuffer mem;
    private final long rxDesc;
    private final long rxAvail;
    private final long rxUsed;
    private final long txDesc;
    private final long txAvail;
    private final long txUsed;
    private final long rxBuffers;
    private final long txBuffers;
    private final DriverQueue rxq;
    private final DriverQueue txq;
    private final Notifier rxKick = new Notifier();
    private final Notifier txKick = new Notifier();
    private final Notifier irq = new Notifier();
    private final int hdrLen;
    private final UsedElement used = new UsedElement();
    private final int[] txFree;
    private int txFreeCount;
    private final UnsafeBuffer assembly = new UnsafeBuffer(new byte[FrameLimits.MAX_GSO_FRAME + VirtioNetHeader.SIZE]);

    // Traffic plan (set before start).
    private long peerMac;
    private int frameLength = 64;
    private long toSend;
    private long intervalNanos;
    private int planId;
    private final int[] slotPlan;
    private volatile boolean verifyPayload = true;
    private Thread vcpu;
    private volatile boolean stop;
    private boolean closed;

    // Results, readable while running.
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong sentBytes = new AtomicLong();
    private final AtomicLong txCompleted = new AtomicLong();
    private final AtomicLong received = new AtomicLong();
    private final AtomicLong receivedBytes = new AtomicLong();
    private final AtomicLong badChecksum = new AtomicLong();
    private final AtomicLong reordered = new AtomicLong();
    private final AtomicLong gaps = new AtomicLong();
    private final AtomicLong kicks = new AtomicLong();
    private final AtomicLong interruptsWaited = new AtomicLong();
    /** Flows by source MAC (at most {@link #MAX_FLOWS}; more are counted together in the last slot). */
    private static final int MAX_FLOWS = 16;
    private final long[] flowMac = new long[MAX_FLOWS];
    private final long[] flowLastSeq = new long[MAX_FLOWS];
    private final AtomicLong[] flowReceived = new AtomicLong[MAX_FLOWS];
    private int flows;
    private long[] latencies = new long[0];
    private int latencyCount;
    private long latencySource;
    private volatile java.util.function.LongConsumer latencySink;
    private boolean stampIntended;
    private boolean virtualVcpu;
    private boolean echo;
    private int echoPending;
    private final AtomicLong echoed = new AtomicLong();
    private final AtomicLong echoDropped = new AtomicLong();
    private volatile Throwable failure;

    public NetGuest(String name, long mac, Config config) {
        this.name = name;
        this.mac = mac;
        this.config = config;
        int n = config.queueSize();
        long ringBytes = align(SplitRing.descTableSize(n) + SplitRing.availRingSize(n), 4096)
                + align(SplitRing.usedRingSize(n), 4096);
        long size = 2 * ringBytes + 2L * n * BUFFER_SIZE;
        this.memory = GuestMemory.anonymous(BASE, size);
        GuestRegion r = memory.region(0);
        this.mem = r.buffer();
        rxDesc = BASE;
        rxAvail = rxDesc + SplitRing.descTableSize(n);
        rxUsed = align(rxAvail + SplitRing.availRingSize(n), 4096);
        txDesc = BASE + ringBytes;
        txAvail = txDesc + SplitRing.descTableSize(n);
        txUsed = align(txAvail + SplitRing.availRingSize(n), 4096);
        rxBuffers = BASE + 2 * ringBytes;
        txBuffers = rxBuffers + (long) n * BUFFER_SIZE;
        rxq = new DriverQueue(memory, n, rxDesc, rxAvail, rxUsed, config.eventIdx());
        txq = new DriverQueue(memory, n, txDesc, txAvail, txUsed, config.eventIdx());
        hdrLen = VirtioNetHeader.SIZE; // VERSION_1 is always negotiated
        txFree = new int[n];
        slotPlan = new int[n];
        for (int i = 0; i < n; i++) {
            txFree[i] = i;
        }
        txFreeCount = n;
        // Fill the RX ring before the device starts, as virtnet_open does.
        for (int i = 0; i < n; i++) {
            rxq.add(rxBuffers + (long) i * BUFFER_SIZE, config.rxBufferSize(), true, i);
        }
        rxq.publish();
    }

    private static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    public String name() {
        return name;
    }

    public long mac() {
        return mac;
    }

    public GuestMemory memory() {
        return memory;
    }

    /** Guest-physical address of the TX descriptor table (hostile-guest tests write garbage there). */
    public long txDescAddr() {
        return txDesc;
    }

    /** Guest-physical address of the TX avail ring. */
    public long txAvailAddr() {
        return txAvail;
    }

    /** The features this guest acks: VERSION_1, and EVENT_IDX / MRG_RXBUF as configured. */
    public long features() {
        long f = NetFeatures.VERSION_1;
        if (config.eventIdx()) {
            f |= NetFeatures.EVENT_IDX;
        }
        if (config.mrgRxbuf()) {
            f |= NetFeatures.MRG_RXBUF;
        }
        return f;
    }

    /**
     * What a VMM does to hand this guest's NIC to a vhost-net device it already owns: features, memory
     * table, then per ring size, addresses, base, kick and call. The backend is attached separately.
     */
    public void wire(VhostNet net, Task owner) throws ErrnoException {
        var d = net.device();
        d.setFeatures(owner, features());
        d.setMemTable(owner, memory);
        int n = config.queueSize();
        long[][] addr = {{rxDesc, rxAvail, rxUsed}, {txDesc, txAvail, txUsed}};
        Notifier[] kick = {rxKick, txKick};
        for (int i = 0; i < 2; i++) {
            d.setVringNum(owner, i, n);
            d.setVringAddr(owner, i, addr[i][0], addr[i][1], addr[i][2]);
            d.setVringBase(owner, i, 0);
            d.setVringKick(owner, i, kick[i]);
            d.setVringCall(owner, i, irq);
        }
    }

    /**
     * Plans the traffic: {@code count} frames of {@code length} bytes to {@code peer}, back to back, or one
     * every {@code intervalNanos} (then the receiver records one-way latencies).
     */
    public void plan(long peer, int length, long count, long intervalNanos) {
        if (length < MIN_FRAME || length > FrameLimits.MAX_FRAME) {
            throw new IllegalArgumentException("frame length " + length);
        }
        this.peerMac = peer;
        this.frameLength = length;
        this.toSend = count;
        this.intervalNanos = intervalNanos;
        this.planId++;
    }

    /**
     * Full payload checks (the default: every byte through the checksum) or light ones (sequence, length
     * and the last payload byte), for benchmarks where the guest's own checking would dominate.
     */
    public void verifyPayload(boolean full) {
        this.verifyPayload = full;
    }

    /**
     * Hands the one-way latency of every frame received from now on to {@code sink} (null stops it), on the
     * vCPU thread; the sink must not block or allocate.
     */
    public void setLatencySink(java.util.function.LongConsumer sink) {
        latencySink = sink;
    }

    /**
     * With an open-loop plan, stamp each frame with its intended send time instead of the time it left
     * (before start). The receiver's latency then includes any delay of the sender itself, as a load
     * generator must count it (coordinated omission corrected); without it, the latency isolates the data
     * path from the sending vCPU's scheduling.
     */
    public void stampIntendedSendTime(boolean on) {
        stampIntended = on;
    }

    /**
     * Echo responder (before start): every frame received goes back to its sender with the addresses
     * swapped and everything else (sequence, send time, payload) as it came, so the sender measures the
     * round trip. A frame that finds no free TX buffer is dropped and counted, as a guest stack would.
     */
    public void setEcho(boolean on) {
        echo = on;
    }

    public long echoed() {
        return echoed.get();
    }

    public long echoDropped() {
        return echoDropped.get();
    }

    /** Records one-way latencies of frames received from {@code srcMac} (up to {@code max}); before start. */
    public void recordLatencies(int max, long srcMac) {
        latencies = new long[max];
        latencyCount = 0;
        latencySource = srcMac;
    }

    private int flow(long src) {
        for (int i = 0; i < flows; i++) {
            if (flowMac[i] == src) {
                return i;
            }
        }
        if (flows == MAX_FLOWS) {
            return MAX_FLOWS - 1;
        }
        int i = flows;
        flowMac[i] = src;
        flowLastSeq[i] = -1;
        flowReceived[i] = new AtomicLong(); // once per flow, not per frame
        flows = i + 1;
        return i;
    }

    /** Frames received from the guest with MAC {@code src}. */
    public long receivedFrom(long src) {
        for (int i = 0; i < MAX_FLOWS; i++) {
            AtomicLong c = flowReceived[i];
            if (c != null && flowMac[i] == src) {
                return c.get();
            }
        }
        return 0;
    }

    /** Starts the vCPU thread (virtual or platform). */
    public void start(boolean virtual) {
        stop = false;
        virtualVcpu = virtual;
        vcpu = (virtual ? Thread.ofVirtual() : Thread.ofPlatform().daemon()).name("vcpu-" + name).start(this::run);
    }

    private void run() {
        try {
            // Open loop: frame k of this run is due at start + k * interval, whenever frame k - 1 went out
            // (optionally stamped with that intended time, so a stall shows in every frame it delayed).
            long start = System.nanoTime();
            long base = sent.get();
            long nextSend = start;
            rxq.disableInterrupts();
            txq.disableInterrupts();
            while (!stop) {
                boolean progress = reapTx();
                if (sent.get() < toSend) {
                    if (intervalNanos == 0) {
                        progress |= transmit(Integer.MAX_VALUE, 0, false);
                    } else {
                        nextSend = start + (sent.get() - base) * intervalNanos;
                        if (System.nanoTime() - nextSend >= 0) {
                            progress |= transmit(1, nextSend, stampIntended);
                        }
                    }
                }
                progress |= receive();
                if (!progress) {
                    idle(nextSend);
                } else if (virtualVcpu) {
                    // A host would preempt a busy vCPU after its slice; a virtual thread is never preempted,
                    // so a guest that always has work would keep its carrier from every other vCPU and worker.
                    dev.loomvisor.vhost.work.Carriers.resched();
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    private void idle(long nextSend) {
        boolean pending = txq.enableInterrupts() | rxq.enableInterrupts();
        if (!pending) {
            long wait = TimeUnit.MILLISECONDS.toNanos(1);
            if (intervalNanos != 0 && sent.get() < toSend) {
                wait = Math.max(0, Math.min(wait, nextSend - System.nanoTime()));
            }
            if (wait > 0) {
                try {
                    if (irq.await(wait, TimeUnit.NANOSECONDS) != 0) {
                        interruptsWaited.incrementAndGet();
                    }
                } catch (InterruptedException e) {
                    stop = true;
                }
            } else if (intervalNanos != 0) {
                LockSupport.parkNanos(1);
            }
        }
        txq.disableInterrupts();
        rxq.disableInterrupts();
    }

    private boolean reapTx() {
        int n = 0;
        while (txq.reap(used)) {
            txFree[txFreeCount++] = (int) used.cookie();
            n++;
        }
        if (n > 0) {
            txCompleted.addAndGet(n);
        }
        return n > 0;
    }

    private boolean transmit(int max, long intendedNanos, boolean stampIntended) {
        int posted = 0;
        long seq = sent.get();
        while (posted < max && posted < VirtioNet.BATCH && seq < toSend && txFreeCount > 0) {
            int slot = txFree[--txFreeCount];
            long gpa = txBuffers + (long) slot * BUFFER_SIZE;
            int off = (int) (gpa - BASE);
            writeFrame(mem, slot, off, seq, stampIntended ? intendedNanos : System.nanoTime());
            txq.add(gpa, hdrLen + frameLength, false, slot);
            posted++;
            seq++;
        }
        if (posted == 0) {
            return false;
        }
        sent.set(seq);
        sentBytes.addAndGet((long) posted * frameLength);
        if (txq.publishAndCheckKick()) {
            txKick.signal();
            kicks.incrementAndGet();
        }
        return true;
    }

    /**
     * Writes frame {@code seq} into TX slot {@code slot}. The header, addresses, payload pattern and its
     * checksum depend only on the plan, so a slot is prepared once per plan; each frame then writes only
     * its sequence number and send time, as a guest application would write its data, not a pattern.
     */
    private void writeFrame(UnsafeBuffer b, int slot, int off, long seq, long sendTime) {
        if (slotPlan[slot] != planId) {
            b.setMemory(off, hdrLen, (byte) 0);
            int f = off + hdrLen;
            Frames.writeMac(b, f + Frames.DST_OFFSET, peerMac);
            Frames.writeMac(b, f + Frames.SRC_OFFSET, mac);
            b.putShort(f + Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
            for (int i = PAYLOAD_OFFSET; i < frameLength; i++) {
                b.putByte(f + i, (byte) (i * 31 + 7));
            }
            b.putLong(f + CSUM_OFFSET, Frames.checksum(b, f + PAYLOAD_OFFSET, frameLength - PAYLOAD_OFFSET),
                    ByteOrder.LITTLE_ENDIAN);
            slotPlan[slot] = planId;
        }
        b.putLong(off + hdrLen + SEQ_OFFSET, seq, ByteOrder.LITTLE_ENDIAN);
        b.putLong(off + hdrLen + TIME_OFFSET, sendTime, ByteOrder.LITTLE_ENDIAN);
    }

    private boolean receive() {
        int reposted = 0;
        int frames = 0;
        long bytes = 0;
        while (rxq.reap(used)) {
            int slot = (int) used.cookie();
            long gpa = rxBuffers + (long) slot * BUFFER_SIZE;
            int off = (int) (gpa - BASE);
            int len = used.len();
            int numBuffers = mem.getShort(off + VirtioNetHeader.NUM_BUFFERS, ByteOrder.LITTLE_ENDIAN) & 0xffff;
            int frameLen;
            UnsafeBuffer src;
            int frameOff;
            if (!config.mrgRxbuf() || numBuffers <= 1) {
                src = mem;
                frameOff = off + hdrLen;
                frameLen = len - hdrLen;
            } else {
                // Gather: the first buffer holds the header, the next numBuffers - 1 used entries the rest.
                frameLen = len - hdrLen;
                assembly.putBytes(0, mem, off + hdrLen, frameLen);
                for (int k = 1; k < numBuffers; k++) {
                    rxq.add(gpa, config.rxBufferSize(), true, slot);
                    reposted++;
                    while (!rxq.reap(used)) {
                        Thread.onSpinWait(); // all buffers of a frame are published together
                    }
                    slot = (int) used.cookie();
                    gpa = rxBuffers + (long) slot * BUFFER_SIZE;
                    int o = (int) (gpa - BASE);
                    assembly.putBytes(frameLen, mem, o, used.len());
                    frameLen += used.len();
                }
                src = assembly;
                frameOff = 0;
            }
            check(src, frameOff, frameLen);
            if (echo) {
                echo(src, frameOff, frameLen);
            }
            frames++;
            bytes += frameLen;
            rxq.add(gpa, config.rxBufferSize(), true, slot);
            reposted++;
        }
        if (frames > 0) {
            received.addAndGet(frames);
            receivedBytes.addAndGet(bytes);
        }
        if (echoPending > 0) {
            echoPending = 0;
            if (txq.publishAndCheckKick()) {
                txKick.signal();
                kicks.incrementAndGet();
            }
        }
        if (reposted > 0 && rxq.publishAndCheckKick()) {
            rxKick.signal();
            kicks.incrementAndGet();
        }
        return frames > 0;
    }

    private void echo(UnsafeBuffer b, int off, int len) {
        if (txFreeCount == 0) {
            reapTx();
        }
        if (txFreeCount == 0 || hdrLen + len > BUFFER_SIZE) {
            echoDropped.incrementAndGet();
            return;
        }
        int slot = txFree[--txFreeCount];
        slotPlan[slot] = planId - 1; // the slot no longer holds this plan's prepared frame
        long gpa = txBuffers + (long) slot * BUFFER_SIZE;
        int o = (int) (gpa - BASE);
        mem.setMemory(o, hdrLen, (byte) 0);
        mem.putBytes(o + hdrLen, b, off, len);
        long from = Frames.readMac(b, off + Frames.SRC_OFFSET);
        Frames.writeMac(mem, o + hdrLen + Frames.DST_OFFSET, from);
        Frames.writeMac(mem, o + hdrLen + Frames.SRC_OFFSET, mac);
        txq.add(gpa, hdrLen + len, false, slot);
        echoPending++;
        echoed.incrementAndGet();
    }

    private void check(UnsafeBuffer b, int off, int len) {
        if (len < MIN_FRAME) {
            badChecksum.incrementAndGet();
            return;
        }
        long seq = b.getLong(off + SEQ_OFFSET, ByteOrder.LITTLE_ENDIAN);
        long csum = b.getLong(off + CSUM_OFFSET, ByteOrder.LITTLE_ENDIAN);
        if (verifyPayload ? Frames.checksum(b, off + PAYLOAD_OFFSET, len - PAYLOAD_OFFSET) != csum
                : len > PAYLOAD_OFFSET && b.getByte(off + len - 1) != (byte) ((len - 1) * 31 + 7)) {
            badChecksum.incrementAndGet();
        }
        long src = Frames.readMac(b, off + Frames.SRC_OFFSET);
        int f = flow(src);
        flowReceived[f].lazySet(flowReceived[f].get() + 1);
        if (seq <= flowLastSeq[f]) {
            reordered.incrementAndGet();
        } else {
            if (seq != flowLastSeq[f] + 1) {
                gaps.incrementAndGet();
            }
            flowLastSeq[f] = seq;
        }
        java.util.function.LongConsumer sink = latencySink;
        if (sink != null || (latencyCount < latencies.length && src == latencySource)) {
            long latency = System.nanoTime() - b.getLong(off + TIME_OFFSET, ByteOrder.LITTLE_ENDIAN);
            if (latencyCount < latencies.length && src == latencySource) {
                latencies[latencyCount++] = latency;
            }
            if (sink != null) {
                sink.accept(latency);
            }
        }
    }

    public long sent() {
        return sent.get();
    }

    public long sentBytes() {
        return sentBytes.get();
    }

    /** TX chains the device returned used. */
    public long txCompleted() {
        return txCompleted.get();
    }

    public long received() {
        return received.get();
    }

    public long receivedBytes() {
        return receivedBytes.get();
    }

    public long badChecksums() {
        return badChecksum.get();
    }

    public long reordered() {
        return reordered.get();
    }

    /** Places where sequence numbers jumped (frames dropped on the way). */
    public long gaps() {
        return gaps.get();
    }

    public long kicks() {
        return kicks.get();
    }

    public long interruptsWaited() {
        return interruptsWaited.get();
    }

    /** A copy of the recorded one-way latencies in nanoseconds (call after stopping). */
    public long[] latencies() {
        return java.util.Arrays.copyOf(latencies, latencyCount);
    }

    /** A vCPU failure (an exception out of the loop), or null. */
    public Throwable failure() {
        return failure;
    }

    /** True if every planned frame was sent and completed by the device. */
    public boolean txDone() {
        return sent.get() == toSend && txCompleted.get() == toSend;
    }

    /**
     * Asks the vCPU to leave its loop without waiting for it. Stopping many guests: ask them all first, then
     * {@link #stop()} each, so that no guest keeps the workers (and the carriers) busy with traffic while
     * another one waits for a carrier to notice its stop.
     */
    public void requestStop() {
        stop = true;
        irq.signal();
    }

    /** Stops the vCPU thread and waits for it (bounded). */
    public void stop() {
        requestStop();
        Thread t = vcpu;
        if (t != null) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public boolean isRunning() {
        Thread t = vcpu;
        return t != null && t.isAlive();
    }

    /** Stops the vCPU and frees guest memory (after the device let go of it). Idempotent. */
    @Override
    public void close() {
        stop();
        if (!closed) {
            closed = true;
            memory.close();
        }
    }
}
