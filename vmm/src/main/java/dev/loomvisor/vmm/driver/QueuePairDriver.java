package dev.loomvisor.vmm.driver;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.Translation;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One queue pair of the guest driver, run by one vCPU thread: keeps the RX ring full of buffers, transmits
 * frames from a {@link TrafficSource}, reaps both rings, answers PINGs when it is an echo responder, and
 * sleeps on the pair's interrupt vector when there is nothing to do. Steady state allocates nothing: RX and
 * TX buffers are carved out of guest memory once, one per descriptor.
 */
public final class QueuePairDriver {

    /** Longest the loop sleeps before re-checking whether it should stop. */
    private static final long MAX_SLEEP_NS = TimeUnit.MILLISECONDS.toNanos(100);
    /** A frame that needs more than this many bytes is not one of ours; MRG_RXBUF reassembly caps there. */
    private static final int MAX_FRAME = 65536;

    private final int pair;
    private final MmioTransport mmio;
    private final DriverQueue rx;
    private final DriverQueue tx;
    private final boolean mergeable;
    private final byte[] mac;
    private final Notifier vector;
    private final int rxBufSize;
    private final long[] rxAddr;
    private final int[] rxFree;
    private int rxFreeTop;
    private final long[] txAddr;
    private final UnsafeBuffer[] txView;
    private final int[] txFree;
    private int txFreeTop;
    private final UnsafeBuffer[] rxView;
    private final UnsafeBuffer frame = new UnsafeBuffer(new byte[MAX_FRAME]);
    private final UsedElement used = new UsedElement();
    private final PairStats stats = new PairStats();
    private long expectedSeq;
    /** The echo responder stopped reaping RX because TX was full. */
    private boolean rxBlocked;

    QueuePairDriver(int pair, GuestMemory memory, GuestAllocator allocator, MmioTransport mmio, DriverQueue rx,
                    DriverQueue tx, boolean mergeable, byte[] mac, Notifier vector) {
        this.pair = pair;
        this.mmio = mmio;
        this.rx = rx;
        this.tx = tx;
        this.mergeable = mergeable;
        this.mac = mac.clone();
        this.vector = vector;
        // Without MRG_RXBUF, and without GSO, each buffer must hold a whole frame: 1526 bytes (line 60).
        this.rxBufSize = VirtioNetHeader.MIN_RX_BUFFER;
        this.rxAddr = new long[rx.size()];
        this.rxView = new UnsafeBuffer[rx.size()];
        this.rxFree = new int[rx.size()];
        for (int i = 0; i < rx.size(); i++) {
            rxAddr[i] = allocator.allocate(rxBufSize, 64);
            rxView[i] = view(memory, rxAddr[i], rxBufSize);
            rxFree[rxFreeTop++] = i;
        }
        int txBuf = VirtioNetHeader.SIZE + FrameFormat.MAX_SIZE;
        this.txAddr = new long[tx.size()];
        this.txView = new UnsafeBuffer[tx.size()];
        this.txFree = new int[tx.size()];
        for (int i = 0; i < tx.size(); i++) {
            txAddr[i] = allocator.allocate(txBuf, 64);
            txView[i] = view(memory, txAddr[i], txBuf);
            txFree[txFreeTop++] = i;
        }
    }

    private static UnsafeBuffer view(GuestMemory memory, long gpa, int len) {
        Translation t = new Translation();
        memory.translate(gpa, len, t);
        return new UnsafeBuffer(t.buffer(), t.offset(), len);
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

    /** Posts every free RX buffer and kicks the RX queue if the device asks for it. */
    public void fillRx() {
        int added = 0;
        while (rxFreeTop > 0 && rx.freeCount() > 0) {
            int slot = rxFree[--rxFreeTop];
            rx.add(rxAddr[slot], rxBufSize, true, slot);
            added++;
        }
        if (added > 0 && rx.publishAndCheckKick()) {
            kick(VirtioNetDevice.rxQueue(pair));
        }
    }

    private void kick(int q) {
        stats.kicks++;
        mmio.write(MmioTransport.QUEUE_NOTIFY, q);
    }

    /** Builds a test frame straight into a TX buffer and adds it; false if the TX ring is full. Not published. */
    boolean addFrame(byte[] dst, byte type, long seq, int size) {
        if (txFreeTop == 0 || tx.freeCount() == 0) {
            return false;
        }
        int slot = txFree[--txFreeTop];
        UnsafeBuffer b = txView[slot];
        VirtioNetHeader.put(b, 0, 0); // TX: num_buffers 0 (line 57)
        FrameFormat.write(b, VirtioNetHeader.SIZE, dst, mac, type, seq, System.nanoTime(), pair, size);
        tx.add(txAddr[slot], VirtioNetHeader.SIZE + size, false, slot);
        stats.txFrames++;
        stats.txBytes += size;
        return true;
    }

    /** Copies a frame into a TX buffer and adds it; false if the TX ring is full. Not published. */
    boolean addFrame(UnsafeBuffer src, int off, int len) {
        if (txFreeTop == 0 || tx.freeCount() == 0 || len > FrameFormat.MAX_SIZE) {
            return false;
        }
        int slot = txFree[--txFreeTop];
        UnsafeBuffer b = txView[slot];
        VirtioNetHeader.put(b, 0, 0);
        b.putBytes(VirtioNetHeader.SIZE, src, off, len);
        tx.add(txAddr[slot], VirtioNetHeader.SIZE + len, false, slot);
        stats.txFrames++;
        stats.txBytes += len;
        return true;
    }

    private boolean txRoom() {
        return txFreeTop > 0 && tx.freeCount() > 0;
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
        stats.txCompleted += n;
        return n;
    }

    /** Takes received frames, checks them, hands them to the sink and answers PINGs; refills the ring. */
    int reapRx(RxSink sink, boolean echo) {
        int frames = 0;
        boolean echoed = false;
        rxBlocked = false;
        while (true) {
            if (echo && !txRoom()) {
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
            UnsafeBuffer b = rxView[slot];
            int len = Math.min(used.len(), rxBufSize);
            int numBuffers = mergeable ? Math.max(1, VirtioNetHeader.numBuffers(b, 0)) : 1;
            int frameLen = Math.max(0, len - VirtioNetHeader.SIZE);
            frame.putBytes(0, b, VirtioNetHeader.SIZE, frameLen);
            rxFree[rxFreeTop++] = slot;
            // MRG_RXBUF: the other buffers of this frame were published with the first (line 59).
            for (int k = 1; k < numBuffers && rx.reap(used); k++) {
                int s = (int) used.cookie();
                int l = Math.min(used.len(), Math.min(rxBufSize, MAX_FRAME - frameLen));
                frame.putBytes(frameLen, rxView[s], 0, l);
                frameLen += l;
                rxFree[rxFreeTop++] = s;
            }
            frames++;
            if (onFrame(frameLen, sink, echo)) {
                echoed = true;
            }
        }
        if (frames > 0) {
            fillRx();
        }
        if (echoed) {
            publishTx();
        }
        return frames;
    }

    private boolean onFrame(int len, RxSink sink, boolean echo) {
        long now = System.nanoTime();
        stats.rxFrames++;
        stats.rxBytes += len;
        if (!FrameFormat.isLoom(frame, 0, len)) {
            return false;
        }
        byte type = frame.getByte(FrameFormat.TYPE);
        long seq = frame.getLong(FrameFormat.SEQ);
        if (!FrameFormat.payloadIntact(frame, 0, len)) {
            stats.rxCorrupt++;
        }
        if (type == FrameFormat.PING && echo) {
            FrameFormat.toPong(frame, 0);
            if (addFrame(frame, 0, len)) {
                stats.echoed++;
            } else {
                stats.echoDropped++;
            }
            sink.onFrame(pair, type, seq, frame.getLong(FrameFormat.TIMESTAMP), now, len);
            return true;
        }
        if (seq == expectedSeq) {
            stats.rxInOrder++;
            expectedSeq = seq + 1;
        } else if (seq > expectedSeq) {
            stats.rxLost += seq - expectedSeq;
            expectedSeq = seq + 1;
        } else {
            stats.rxOutOfOrder++;
        }
        sink.onFrame(pair, type, seq, frame.getLong(FrameFormat.TIMESTAMP), now, len);
        return false;
    }

    /**
     * The vCPU loop: transmit what {@code source} has due (null: send nothing), reap, answer PINGs if
     * {@code echo}, sleep on the interrupt vector when idle. Returns when {@code running} turns false or the
     * thread is interrupted.
     */
    public void run(TrafficSource source, RxSink sink, boolean echo, BooleanSupplier running) {
        long start = System.nanoTime();
        long seq = 0;
        long count = source == null ? 0 : source.count();
        byte[] dst = source == null ? null : source.dst();
        while (running.getAsBoolean() && !Thread.currentThread().isInterrupted()) {
            boolean work = false;
            long elapsed = System.nanoTime() - start;
            int added = 0;
            while (seq < count && source.dueNanos(seq) <= elapsed && added < tx.size()) {
                if (!addFrame(dst, source.type(), seq, source.nextSize())) {
                    break;
                }
                seq++;
                added++;
            }
            if (added > 0) {
                publishTx();
                work = true;
            }
            if (reapTx() > 0) {
                work = true;
            }
            if (reapRx(sink, echo) > 0) {
                work = true;
            }
            if (work) {
                continue;
            }
            long sleep = MAX_SLEEP_NS;
            if (seq < count && source.rate() > 0) {
                sleep = Math.min(sleep, Math.max(0, source.dueNanos(seq) - (System.nanoTime() - start)));
            }
            if (sleep == 0) {
                continue;
            }
            // Re-enable interrupts and re-check (virtqueue_enable_cb): used entries that came meanwhile may
            // not raise one.
            boolean pending = tx.enableInterrupts();
            if (!rxBlocked) {
                pending |= rx.enableInterrupts();
            }
            if (pending) {
                continue;
            }
            try {
                if (vector.await(sleep, TimeUnit.NANOSECONDS) > 0) {
                    stats.interrupts++;
                }
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Frames sent so far by {@link #run}. */
    public long sent() {
        return stats.txFrames;
    }
}
