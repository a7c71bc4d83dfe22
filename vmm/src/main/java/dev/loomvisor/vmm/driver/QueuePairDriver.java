package dev.loomvisor.vmm.driver;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Resched;
import dev.loomvisor.core.timer.Hrtimer;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.Translation;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverVirtqueue;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One queue pair of the guest driver, run by one vCPU thread: keeps the RX ring full of buffers, transmits
 * frames from a {@link TrafficSource} (closed loop, or open loop with intended send times), reaps both rings,
 * checks every received frame (per-flow sequence, payload), hands latencies to a sink, answers PINGs when it
 * is an echo responder, and sleeps on the pair's interrupt vector when there is nothing to do.
 *
 * <p>NAPI-like: the vCPU keeps the rings' interrupts suppressed while it finds work, and only when a round
 * finds none turns them on, re-checks (virtqueue_enable_cb: used entries that came meanwhile may not raise
 * one) and waits. Steady state allocates nothing: RX and TX buffers are carved out of guest memory once, one
 * per descriptor, and a TX buffer keeps its prepared frame, so each frame writes only its seq and time. Free
 * buffers are reused last-freed first and only as many RX buffers are posted as the traffic needs, so a
 * mostly idle guest touches a few pages of its buffers, not all of them.
 *
 * <p>The rings are split or packed, as the driver negotiated ({@link DriverVirtqueue}); everything above is the
 * same on both.
 *
 * <p>Traffic, echo and sinks may be changed while the vCPU runs ({@link #transmit} starts a new plan); the
 * sequence numbers go on growing across plans, so a receiver's checks hold over a whole run.
 */
public final class QueuePairDriver {

    /** What the echo responder returns to its sender. */
    public enum Echo {
        OFF,
        /** PINGs, as PONGs: round trips between two emulated guests. */
        PINGS,
        /** Every frame, addresses swapped and the rest as it came: a reflector for any peer's traffic. */
        ALL
    }

    /** A frame that needs more than this many bytes is not one of ours; MRG_RXBUF reassembly caps there. */
    private static final int MAX_FRAME = 65536;
    /** Each TX buffer: the header and the largest test frame. */
    private static final int TX_BUFFER_BYTES = VirtioNetHeader.SIZE + FrameFormat.MAX_SIZE;
    /** Frames posted before the TX ring is published: VHOST_NET_BATCH, as the device batches its side. */
    private static final int TX_BATCH = 64;
    /**
     * Flows told apart by source MAC and the sender's queue pair (the frame's flow field: each pair of a
     * multiqueue sender numbers its own frames); more share the last slot.
     */
    private static final int MAX_FLOWS = 16;
    /**
     * RX buffers posted at first. A reap that finds half of the posted ones used doubles the count, up to every
     * buffer: a mostly idle guest cycles through a few buffers (a few touched pages of guest memory) while a
     * busy one soon has its whole ring posted.
     */
    static final int RX_POSTED_INITIAL = 16;
    /** Longest a busy virtual vCPU keeps its carrier before yielding it, as a host preempts a busy vCPU. */
    private static final long SLICE_NANOS = 100_000;
    /** MRG_RXBUF: how long to wait for the rest of a frame whose first buffer is used already. */
    private static final long GATHER_SPINS = 1 << 20;
    private static final long NO_DEADLINE = Long.MAX_VALUE;
    /**
     * Halts before {@link #rounds} returns to {@link #loop} and is called again. Every vCPU enters its loop once,
     * most before the JIT compiled it, and such an activation stays in the interpreter; a virtual thread that
     * parks with an interpreted frame among those it ran since it last parked takes the slow freeze (frame by frame,
     * into a new stack chunk). Re-entered now and then, the rounds run compiled and park without returning
     * into the interpreted frame below them, which stays frozen.
     */
    private static final int HALTS_PER_CALL = 64;

    private final int pair;
    private final MmioTransport mmio;
    private final DriverVirtqueue rx;
    private final DriverVirtqueue tx;
    private final boolean mergeable;
    private final byte[] mac;
    private final Notifier vector;
    private final int rxBufSize;
    private final long[] rxAddr;
    private final GuestMemory memory;
    private final UnsafeBuffer[] rxView;
    /** Free RX buffers, a stack: the buffer freed last is posted next, so a quiet guest reuses warm pages. */
    private final int[] rxFree;
    private int rxFreeTop;
    /** RX buffers to keep posted now (see {@link #RX_POSTED_INITIAL}). */
    private int rxPostedTarget;
    private final long[] txAddr;
    private final UnsafeBuffer[] txView;
    private final int[] txFree;
    private int txFreeTop;
    /** The plan and size a TX buffer's fixed fields were written for (-1: not prepared). */
    private final int[] txPreparedPlan;
    private final int[] txPreparedSize;
    /** MRG_RXBUF gather space, made on the first frame that spans buffers (64 KiB a mostly idle VM never needs). */
    private UnsafeBuffer frame;
    private final UsedElement used = new UsedElement();
    private final PairStats stats = new PairStats();

    // Per-flow receive state (vCPU only, but the counts readable by anyone).
    private final AtomicLongArray flowMac = new AtomicLongArray(MAX_FLOWS);
    private final AtomicLongArray flowReceived = new AtomicLongArray(MAX_FLOWS);
    private final long[] flowLastSeq = new long[MAX_FLOWS];
    private volatile int flows;

    // Settings (any thread).
    private volatile TrafficSource source;
    private volatile int planVersion;
    private volatile Echo echo = Echo.OFF;
    private volatile RxSink sink = RxSink.NONE;
    private volatile LongConsumer latencySink;
    private volatile LongConsumer latenessSink;
    private volatile long latencySource = -1;
    private volatile boolean fullCheck = true;
    private volatile boolean stopRequested;
    private volatile Throwable failure;
    /** Where paced waits get their wake-up (null: a timed park per wait). */
    private volatile HrtimerBase pacingClock;

    // Transmit state (vCPU only).
    private int planSeen;
    private TrafficSource active;
    private byte[] activeDst;
    private long planSent;
    private long planStart;
    private long nextSeq;
    /** The echo responder stopped reaping RX because TX was full. */
    private boolean rxBlocked;
    private long sliceStart;
    /** Start of the vCPU's wall slice: restarted only by a halt of a slice or more, or by giving the carrier up. */
    private long wallSliceStart;
    /** The vCPU's pacing timer while it runs on a {@link #pacingClock}, and the expiry it was armed for. */
    private Hrtimer pacer;
    /** The pacing clock of the running loop (vCPU thread only), or null. */
    private HrtimerBase runClock;
    private long pacerExpires = NO_DEADLINE;

    QueuePairDriver(int pair, GuestMemory memory, GuestAllocator allocator, MmioTransport mmio, DriverVirtqueue rx,
                    DriverVirtqueue tx, boolean mergeable, byte[] mac, Notifier vector, int rxBufSize) {
        this(pair, memory, allocator, mmio, rx, tx, mergeable, mac, vector, rxBufSize, 0, 0);
    }

    /**
     * @param rxBuffers RX buffers to keep posted (0: one per descriptor); fewer make a small, mostly idle guest
     * @param txBuffers TX buffers to keep in flight (0: one per descriptor)
     */
    QueuePairDriver(int pair, GuestMemory memory, GuestAllocator allocator, MmioTransport mmio, DriverVirtqueue rx,
                    DriverVirtqueue tx, boolean mergeable, byte[] mac, Notifier vector, int rxBufSize, int rxBuffers,
                    int txBuffers) {
        this.pair = pair;
        this.memory = memory;
        this.mmio = mmio;
        this.rx = rx;
        this.tx = tx;
        this.mergeable = mergeable;
        this.mac = mac.clone();
        this.vector = vector;
        this.rxBufSize = rxBufSize;
        int rxCount = rxBuffers <= 0 ? rx.size() : Math.min(rxBuffers, rx.size());
        int txCount = txBuffers <= 0 ? tx.size() : Math.min(txBuffers, tx.size());
        this.rxAddr = new long[rxCount];
        this.rxView = new UnsafeBuffer[rxCount];
        this.rxFree = new int[rxCount];
        for (int i = 0; i < rxCount; i++) {
            rxAddr[i] = allocator.allocate(rxBufSize, 64);
        }
        // Buffer 0 on top: posted first, so the buffers in use are the lowest addresses.
        for (int i = rxCount - 1; i >= 0; i--) {
            rxFree[rxFreeTop++] = i;
        }
        this.rxPostedTarget = Math.min(rxCount, RX_POSTED_INITIAL);
        this.txAddr = new long[txCount];
        this.txView = new UnsafeBuffer[txCount];
        this.txFree = new int[txCount];
        this.txPreparedPlan = new int[txCount];
        this.txPreparedSize = new int[txCount];
        for (int i = 0; i < txCount; i++) {
            txAddr[i] = allocator.allocate(TX_BUFFER_BYTES, 64);
            txFree[txFreeTop++] = i;
            txPreparedPlan[i] = -1;
        }
    }

    private static UnsafeBuffer view(GuestMemory memory, long gpa, int len) {
        Translation t = new Translation();
        memory.translate(gpa, len, t);
        return new UnsafeBuffer(t.buffer(), t.offset(), len);
    }

    /**
     * The view of RX buffer {@code slot}, made the first time the slot is used: buffers are reused last-freed
     * first and posted only as the traffic needs them, so a mostly idle guest uses a few slots of its ring, and
     * a view per slot made up front (two rings of 256) was 24 KiB of heap per VM.
     */
    private UnsafeBuffer rxView(int slot) {
        UnsafeBuffer b = rxView[slot];
        return b != null ? b : (rxView[slot] = view(memory, rxAddr[slot], rxBufSize));
    }

    /** The view of TX buffer {@code slot}, made the first time the slot is used (see {@link #rxView(int)}). */
    private UnsafeBuffer txView(int slot) {
        UnsafeBuffer b = txView[slot];
        return b != null ? b : (txView[slot] = view(memory, txAddr[slot], TX_BUFFER_BYTES));
    }

    public int pair() {
        return pair;
    }

    public PairStats stats() {
        return stats;
    }

    public byte[] mac() {
        return mac.clone();
    }

    /** The RX buffer size this driver posts (with MRG_RXBUF, a frame may take several). */
    public int rxBufferSize() {
        return rxBufSize;
    }

    /** RX buffers this driver keeps posted. */
    public int rxBuffers() {
        return rxAddr.length;
    }

    /** TX buffers this driver keeps in flight. */
    public int txBuffers() {
        return txAddr.length;
    }

    /**
     * Paces open-loop frames through {@code clock} (null: a timed park per wait, the default): the vCPU arms
     * one {@link Hrtimer} for its next send time and blocks untimed, so many paced vCPUs share one clock
     * thread instead of each sleeping on its own timer. Takes effect when a vCPU next enters {@link #run}.
     */
    public void setPacingClock(HrtimerBase clock) {
        pacingClock = clock;
    }

    // ---- settings, from any thread -------------------------------------------------------------------------

    /**
     * Starts a new transmit plan (null: send nothing more): frame k of it is due {@code source.dueNanos(k)}
     * after the vCPU picks it up. Wakes the vCPU.
     */
    public void transmit(TrafficSource source) {
        this.source = source;
        planVersion++;
        vector.signal();
    }

    /** Echo responder: every PING received goes back to its sender as a PONG. */
    public void setEcho(boolean on) {
        echo = on ? Echo.PINGS : Echo.OFF;
    }

    public void setEcho(Echo mode) {
        echo = mode;
    }

    public void setSink(RxSink s) {
        sink = s == null ? RxSink.NONE : s;
    }

    /**
     * Hands the latency (receive time minus the frame's send time, ns) of every DATA or PONG frame received
     * from now on to {@code s} (null stops it), on the vCPU thread; {@code s} must not block or allocate.
     */
    public void setLatencySink(LongConsumer s) {
        setLatencySink(s, -1);
    }

    /** As {@link #setLatencySink(LongConsumer)}, for frames from the MAC {@code fromMac} only (-1: all). */
    public void setLatencySink(LongConsumer s, long fromMac) {
        latencySource = fromMac;
        latencySink = s;
    }

    /**
     * Hands the lateness of every open-loop frame sent from now on (the time the vCPU put it on its ring minus
     * the time it was due, ns) to {@code s} (null stops it), on the vCPU thread; {@code s} must not block or
     * allocate. The part of a one-way latency that is the sender's: its pacing timer, its wake-up and its turn on
     * a CPU, before any ring, worker or switch.
     */
    public void setLatenessSink(LongConsumer s) {
        latenessSink = s;
    }

    /**
     * Full payload checks (the default: every byte) or light ones (seq, length and the last payload byte), for
     * benchmarks where the guest's own checking would dominate.
     */
    public void verifyPayload(boolean full) {
        fullCheck = full;
    }

    /** Asks the vCPU to leave {@link #run}; it wakes up to see it. */
    public void requestStop() {
        stopRequested = true;
        vector.signal();
    }

    /** Clears an earlier stop request, before a vCPU runs this pair again. */
    public void clearStop() {
        stopRequested = false;
    }

    /** Frames received from the guest with MAC {@code src} (as a 48-bit number), over all its pairs. */
    public long receivedFrom(long src) {
        int n = flows;
        long sum = 0;
        for (int i = 0; i < n; i++) {
            if ((flowMac.get(i) & MAC_MASK) == src) {
                sum += flowReceived.get(i);
            }
        }
        return sum;
    }

    private static final long MAC_MASK = (1L << 48) - 1;

    // ---- the vCPU ------------------------------------------------------------------------------------------

    /** RX buffers posted to the device now (vCPU only). */
    int rxPosted() {
        return rxAddr.length - rxFreeTop;
    }

    /** Posts free RX buffers up to the posted target and kicks the RX queue if the device asks for it. */
    public void fillRx() {
        int added = 0;
        int posted = rxAddr.length - rxFreeTop;
        while (rxFreeTop > 0 && posted + added < rxPostedTarget && rx.freeCount() > 0) {
            int slot = rxFree[--rxFreeTop];
            rx.add(rxAddr[slot], rxBufSize, true, slot);
            added++;
        }
        if (added > 0 && rx.publishAndCheckKick()) {
            stats.add(PairStats.RX_KICKS, 1);
            kick(VirtioNetDevice.rxQueue(pair));
        }
    }

    private void kick(int q) {
        stats.add(PairStats.KICKS, 1);
        mmio.write(MmioTransport.QUEUE_NOTIFY, q);
    }

    private boolean txRoom() {
        return txFreeTop > 0 && tx.freeCount() > 0;
    }

    /** Adds frame {@code seq} of the active plan to TX. Not published. */
    private void addFrame(int size, long sendNanos) {
        int slot = txFree[--txFreeTop];
        UnsafeBuffer b = txView(slot);
        if (txPreparedPlan[slot] != planSeen || txPreparedSize[slot] != size) {
            VirtioNetHeader.put(b, 0, 0); // TX: num_buffers 0 (virtio 1.2 §5.1.6.2.1)
            FrameFormat.writeFixed(b, VirtioNetHeader.SIZE, activeDst, mac, active.type(), pair, size);
            txPreparedPlan[slot] = planSeen;
            txPreparedSize[slot] = size;
        }
        FrameFormat.stamp(b, VirtioNetHeader.SIZE, nextSeq++, sendNanos);
        tx.add(txAddr[slot], VirtioNetHeader.SIZE + size, false, slot);
        stats.add(PairStats.TX_FRAMES, 1);
        stats.add(PairStats.TX_BYTES, size);
    }

    /** Copies a frame into a TX buffer and adds it; false if there is no room. Not published. */
    private boolean addCopy(UnsafeBuffer src, int off, int len) {
        if (!txRoom() || len > FrameFormat.MAX_SIZE) {
            return false;
        }
        int slot = txFree[--txFreeTop];
        UnsafeBuffer b = txView(slot);
        VirtioNetHeader.put(b, 0, 0);
        b.putBytes(VirtioNetHeader.SIZE, src, off, len);
        txPreparedPlan[slot] = -1;
        tx.add(txAddr[slot], VirtioNetHeader.SIZE + len, false, slot);
        return true;
    }

    private void publishTx() {
        if (tx.publishAndCheckKick()) {
            kick(VirtioNetDevice.txQueue(pair));
        }
    }

    /** Frees the TX buffers the device is done with. */
    int reapTx() {
        int n = 0;
        while (tx.reap(used)) {
            txFree[txFreeTop++] = (int) used.cookie();
            n++;
        }
        if (n > 0) {
            stats.add(PairStats.TX_COMPLETED, n);
        }
        return n;
    }

    /**
     * Posts what the active plan has due at {@code now}: closed loop, a batch as the ring takes it; open loop,
     * every frame whose time has come, each stamped with its due time if the source asks for it.
     */
    private int transmitDue(long now) {
        TrafficSource s = active;
        if (s == null) {
            return 0;
        }
        int posted = 0;
        long count = s.count();
        if (!s.paced()) {
            // One send time per batch: the device sees the whole batch at once, when it is published below.
            long sent = System.nanoTime();
            while (posted < TX_BATCH && planSent < count && txRoom()) {
                addFrame(s.nextSize(), sent);
                planSent++;
                posted++;
            }
        } else {
            LongConsumer lateness = latenessSink;
            while (posted < TX_BATCH && planSent < count && txRoom()) {
                long due = planStart + s.dueNanos(planSent);
                if (now - due < 0) {
                    break;
                }
                if (lateness != null) {
                    lateness.accept(now - due); // the round's clock read: no second one per frame
                }
                addFrame(s.nextSize(), s.stampsIntended() ? due : System.nanoTime());
                planSent++;
                posted++;
            }
        }
        if (posted > 0) {
            publishTx();
        }
        return posted;
    }

    /** When the next open-loop frame is due, or {@link #NO_DEADLINE}. */
    private long nextDue() {
        TrafficSource s = active;
        if (s == null || !s.paced() || planSent >= s.count()) {
            return NO_DEADLINE;
        }
        return planStart + s.dueNanos(planSent);
    }

    /** Takes received frames, checks them, hands them on and answers PINGs; refills the ring. */
    int reapRx() {
        int frames = 0;
        boolean echoed = false;
        Echo echoMode = echo;
        boolean echoOn = echoMode != Echo.OFF;
        RxSink rxSink = sink;
        LongConsumer latency = latencySink;
        long latencyFrom = latencySource;
        boolean full = fullCheck;
        int freeBefore = rxFreeTop;
        rxBlocked = false;
        while (true) {
            if (echoOn && !txRoom()) {
                // Back-pressure instead of loss: leave PINGs in the RX ring until TX buffers come back.
                reapTx();
                if (!txRoom()) {
                    rxBlocked = true;
                    break;
                }
            }
            if (!rx.reap(used)) {
                break;
            }
            int slot = (int) used.cookie();
            UnsafeBuffer b = rxView(slot);
            int len = Math.min(used.len(), rxBufSize);
            int numBuffers = mergeable && len >= VirtioNetHeader.SIZE ? Math.max(1, VirtioNetHeader.numBuffers(b, 0)) : 1;
            int frameLen = Math.max(0, len - VirtioNetHeader.SIZE);
            rxFree[rxFreeTop++] = slot;
            UnsafeBuffer fb = b;
            int off = VirtioNetHeader.SIZE;
            if (numBuffers > 1) {
                // MRG_RXBUF: the other buffers of this frame are used together with the first (virtio 1.2
                // §5.1.6.4.1); gather them.
                if (frame == null) {
                    frame = new UnsafeBuffer(new byte[MAX_FRAME]);
                }
                frame.putBytes(0, b, VirtioNetHeader.SIZE, frameLen);
                for (int k = 1; k < numBuffers; k++) {
                    if (!reapRest()) {
                        frameLen = -1;
                        break;
                    }
                    int s = (int) used.cookie();
                    int l = Math.min(used.len(), Math.min(rxBufSize, MAX_FRAME - frameLen));
                    frame.putBytes(frameLen, rxView(s), 0, l);
                    frameLen += l;
                    rxFree[rxFreeTop++] = s;
                }
                fb = frame;
                off = 0;
            }
            frames++;
            if (frameLen < 0) {
                stats.add(PairStats.RX_CORRUPT, 1);
                continue;
            }
            if (echoMode == Echo.ALL) {
                echoed |= echoAny(fb, off, frameLen);
                continue;
            }
            if (onFrame(fb, off, frameLen, echoOn, rxSink, latency, latencyFrom, full)) {
                echoed = true;
            }
        }
        if (frames > 0) {
            int reaped = rxFreeTop - freeBefore;
            if (reaped * 2 >= rxPostedTarget && rxPostedTarget < rxAddr.length) {
                rxPostedTarget = Math.min(rxAddr.length, rxPostedTarget * 2);
            }
            fillRx();
        }
        if (echoed) {
            publishTx();
        }
        return frames;
    }

    /** Returns any frame to its sender: destination its source, source this NIC. */
    private boolean echoAny(UnsafeBuffer b, int off, int len) {
        stats.add(PairStats.RX_FRAMES, 1);
        stats.add(PairStats.RX_BYTES, len);
        if (len < FrameFormat.SRC + 6) {
            stats.add(PairStats.RX_CORRUPT, 1);
            return false;
        }
        b.putBytes(off + FrameFormat.DST, b, off + FrameFormat.SRC, 6);
        b.putBytes(off + FrameFormat.SRC, mac);
        if (addCopy(b, off, len)) {
            stats.add(PairStats.ECHOED, 1);
            return true;
        }
        stats.add(PairStats.ECHO_DROPPED, 1);
        return false;
    }

    /** The next used RX entry of a frame being gathered; false if the device never published it. */
    private boolean reapRest() {
        for (long spin = 0; spin < GATHER_SPINS; spin++) {
            if (rx.reap(used)) {
                return true;
            }
            Thread.onSpinWait();
        }
        return false;
    }

    private boolean onFrame(UnsafeBuffer b, int off, int len, boolean echoOn, RxSink rxSink, LongConsumer latency,
                            long latencyFrom, boolean full) {
        stats.add(PairStats.RX_FRAMES, 1);
        stats.add(PairStats.RX_BYTES, len);
        if (!FrameFormat.isLoom(b, off, len)) {
            stats.add(PairStats.RX_CORRUPT, 1);
            return false;
        }
        if (full ? !FrameFormat.payloadIntact(b, off, len) : !FrameFormat.lastByteIntact(b, off, len)) {
            stats.add(PairStats.RX_CORRUPT, 1);
        }
        byte type = b.getByte(off + FrameFormat.TYPE);
        long seq = FrameFormat.seq(b, off);
        long sent = FrameFormat.sendNanos(b, off);
        long src = FrameFormat.srcMac(b, off);
        if (type == FrameFormat.PING && echoOn) {
            FrameFormat.toPong(b, off);
            if (addCopy(b, off, len)) {
                stats.add(PairStats.ECHOED, 1);
            } else {
                stats.add(PairStats.ECHO_DROPPED, 1);
            }
            if (rxSink != RxSink.NONE) {
                rxSink.onFrame(pair, type, seq, sent, System.nanoTime(), len);
            }
            return true;
        }
        int f = flow(src | ((long) (b.getInt(off + FrameFormat.FLOW, java.nio.ByteOrder.LITTLE_ENDIAN) & 0xffff) << 48));
        flowReceived.setOpaque(f, flowReceived.getPlain(f) + 1);
        long last = flowLastSeq[f];
        if (seq == last + 1) {
            stats.add(PairStats.RX_IN_ORDER, 1);
            flowLastSeq[f] = seq;
        } else if (seq > last) {
            stats.add(PairStats.RX_LOST, seq - last - 1);
            stats.add(PairStats.RX_GAPS, 1);
            flowLastSeq[f] = seq;
        } else {
            stats.add(PairStats.RX_OUT_OF_ORDER, 1);
        }
        if (latency != null || rxSink != RxSink.NONE) {
            long now = System.nanoTime();
            if (latency != null && (latencyFrom < 0 || latencyFrom == src)) {
                latency.accept(now - sent);
            }
            rxSink.onFrame(pair, type, seq, sent, now, len);
        }
        return false;
    }

    private int flow(long key) {
        int n = flows;
        for (int i = 0; i < n; i++) {
            if (flowMac.getPlain(i) == key) {
                return i;
            }
        }
        if (n == MAX_FLOWS) {
            return MAX_FLOWS - 1;
        }
        flowMac.set(n, key);
        flowLastSeq[n] = -1;
        flows = n + 1;
        return n;
    }

    /**
     * The vCPU loop with these settings: transmit {@code source} (null: send nothing), hand received frames to
     * {@code sink}, answer PINGs if {@code echo}. Returns when {@code running} turns false, a stop is
     * requested or the thread is interrupted.
     */
    public void run(TrafficSource source, RxSink sink, boolean echo, BooleanSupplier running) {
        setSink(sink);
        setEcho(echo);
        transmit(source);
        run(running);
    }

    /** The vCPU loop with the current settings; see {@link #run(TrafficSource, RxSink, boolean, BooleanSupplier)}. */
    public void run(BooleanSupplier running) {
        // The interrupt line: the vector's signal unparks this vCPU (an irqfd injecting into a halted vCPU).
        Thread vcpu = Thread.currentThread();
        vector.setListener(n -> LockSupport.unpark(vcpu));
        HrtimerBase clock = pacingClock;
        // The timer unparks the vCPU rather than signalling the vector: a send time is not an interrupt.
        pacer = clock == null ? null : clock.timer(vcpu);
        pacerExpires = NO_DEADLINE;
        runClock = clock;
        if (clock != null) {
            clock.idleExit(); // running: it fires due send times at its halts (HrtimerBase.idleEnter)
        }
        try {
            loop(running);
        } catch (RuntimeException | Error e) {
            failure = e; // a driver bug: the vCPU stops, and the VMM can tell why
        } finally {
            vector.setListener(null);
            if (clock != null) {
                clock.idleEnter();
            }
            runClock = null;
            if (pacer != null) {
                pacer.close();
                pacer = null;
            }
        }
    }

    /** Why the vCPU loop ended with an exception, or null. */
    public Throwable failure() {
        return failure;
    }

    private void loop(BooleanSupplier running) {
        rx.disableInterrupts();
        tx.disableInterrupts();
        sliceStart = System.nanoTime();
        wallSliceStart = sliceStart;
        while (rounds(running)) {
            // Back into rounds, compiled by now: see HALTS_PER_CALL.
        }
    }

    /** The vCPU's rounds, until {@link #HALTS_PER_CALL} halts or slice yields: false when the loop must end. */
    private boolean rounds(BooleanSupplier running) {
        int halts = 0;
        while (halts < HALTS_PER_CALL) {
            if (stopRequested || !running.getAsBoolean() || Thread.currentThread().isInterrupted()) {
                return false;
            }
            int version = planVersion;
            if (version != planSeen) {
                planSeen = version;
                active = source;
                activeDst = active == null ? null : active.dst();
                planSent = 0;
                planStart = active != null && active.anchored() ? active.startNanos() : System.nanoTime();
            }
            long now = System.nanoTime();
            // Completions only free buffers for transmitDue just below: alone they are no reason for another
            // round (a sender woken for one frame would otherwise come round again for that frame's completion,
            // and a round that took a kick's wake-up syscall would end its slice at once).
            reapTx();
            boolean work = transmitDue(now) > 0;
            work |= reapRx() > 0;
            if (work) {
                boolean ranSlice = now - sliceStart >= SLICE_NANOS;
                boolean wallSlice = now - wallSliceStart >= SLICE_NANOS;
                if (ranSlice || wallSlice) {
                    // A host preempts a busy vCPU after its slice when another task wants the CPU; a virtual
                    // thread is never preempted, so a guest that always has work would keep its carrier from
                    // every other vCPU and worker. The two slices are Carriers.resched's: a slice run without a
                    // halt, and a slice of wall time in short halts (Resched.shouldPreempt).
                    if (Thread.currentThread().isVirtual()) {
                        if (runClock != null) {
                            runClock.runQueues(); // once per slice at least, as idleExit promises
                        }
                        if (Resched.shouldPreempt(ranSlice, wallSlice)) {
                            stats.add(PairStats.SLICE_YIELDS, 1);
                            Resched.preempt();
                            halts++; // a busy vCPU gives its carrier up only here: it too comes back into a compiled rounds
                        }
                    }
                    sliceStart = System.nanoTime();
                    wallSliceStart = sliceStart;
                }
                continue;
            }
            long deadline = nextDue();
            if (deadline != NO_DEADLINE && deadline - System.nanoTime() <= 0) {
                continue;
            }
            // TX completions are reaped at the next send; an interrupt for them is wanted only when the vCPU
            // waits for a TX buffer or has nothing more to send (so a finished plan's buffers come back), as
            // Linux's virtio-net leaves TX interrupts off until its ring runs low. Otherwise every frame would wake
            // its sender once more, just to free the buffer. Out of room, it asks for the interrupt three quarters
            // of the way through the frames in flight (start_xmit: virtqueue_enable_cb_delayed), not at the first
            // completion: a sender woken per completion would post a frame or two per wake-up.
            boolean pending = !txRoom() ? tx.enableInterruptsDelayed()
                    : deadline == NO_DEADLINE ? tx.enableInterrupts() : false;
            if (!rxBlocked) {
                pending |= rx.enableInterrupts();
            }
            if (!pending) {
                long halted = System.nanoTime();
                awaitInterrupt(deadline);
                halts++;
                long woke = System.nanoTime();
                if (woke - halted >= SLICE_NANOS) {
                    wallSliceStart = woke; // halted a slice or more: back with a fresh wall slice
                }
            }
            tx.disableInterrupts();
            rx.disableInterrupts();
            sliceStart = System.nanoTime();
        }
        return true;
    }

    /**
     * The halted vCPU: sleeps until the pair's interrupt vector fires, or until {@code deadline}
     * ({@link System#nanoTime()}) when an open-loop frame is due then. Anything that may end the loop wakes it
     * too, as a signal kicks a vCPU out of KVM_RUN: a stop request (it signals the vector), a signal to the
     * vCPU task (signal_wake_up unparks it) or a Java interrupt. With a pacing clock the deadline is an armed
     * {@link Hrtimer} and the park is untimed. One park per call; the loop re-checks why (and the time: a
     * wake-up may be stale). Nothing wakes an idle vCPU periodically.
     */
    private void awaitInterrupt(long deadline) {
        if (vector.poll() > 0) {
            stats.add(PairStats.INTERRUPTS, 1);
            return;
        }
        if (deadline == NO_DEADLINE) {
            halt();
        } else if (pacer != null) {
            // Armed once per send time: a wake by an interrupt leaves the timer armed for the same frame. The
            // loop re-reads the clock after any wake-up, so a stale expiry (an earlier plan's) only costs a
            // round.
            if (pacerExpires != deadline || !pacer.isActive()) {
                pacerExpires = deadline;
                pacer.start(deadline);
            }
            if (deadline - System.nanoTime() > 0) {
                halt();
            }
        } else {
            stats.add(PairStats.HALTS, 1);
            LockSupport.parkNanos(this, Math.max(1, deadline - System.nanoTime()));
        }
        if (vector.poll() > 0) {
            stats.add(PairStats.INTERRUPTS, 1);
        }
    }

    /**
     * An untimed halt. With a pacing clock, the vCPU first fires the send times already due (its own or other
     * vCPUs'), so that they are queued on this carrier while it is still awake, and tells the clock it no
     * longer runs (HrtimerBase.idleEnter, as a CPU entering idle stops its tick).
     */
    private void halt() {
        stats.add(PairStats.HALTS, 1);
        HrtimerBase clock = runClock;
        if (clock != null) {
            clock.idleEnter();
        }
        LockSupport.park(this);
        if (clock != null) {
            clock.idleExit();
        }
    }

    /** Frames sent so far by the pair's sources. */
    public long sent() {
        return stats.txFrames();
    }
}
