package dev.loomvisor.vhost.backend;

import dev.loomvisor.vhost.stats.Counters;
import dev.loomvisor.vhost.sys.Tun;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A backend that is the host kernel's network stack, through a TAP device ({@link Tun}): what the guest sends
 * is written to the TAP fd and enters the host on that interface; what the host sends out of the interface
 * is read from the fd and offered to the guest.
 *
 * <p>Unlike the in-process backends, readiness comes from the kernel, so one platform thread waits in
 * poll(2) on the fd: blocked in the kernel while nothing arrives (no CPU, no timer), it calls the RX
 * listener when a frame waits and then sleeps until {@link #receive} has drained the fd (EAGAIN), so a
 * frame the guest has no buffer for yet does not make it spin. Reads and writes are non-blocking, into
 * buffers made once: a frame costs a copy and a system call, no allocation.
 */
public final class TapBackend implements NetBackend {

    /** Counters: TX = from the guest to the host, RX = from the host to the guest. */
    public enum Counter {
        TX_FRAMES, TX_BYTES,
        /** The TAP's queue towards the host was full (EAGAIN) or the write failed otherwise. */
        TX_DROP_WRITE,
        RX_FRAMES, RX_BYTES,
        /** A read failed with an error other than EAGAIN. */
        RX_ERRORS
    }

    private static final int MAX_FRAME = 65536;

    private final Tun tun;
    private final int hdr;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment txSeg;
    private final UnsafeBuffer txBuf;
    private final MemorySegment txState;
    private final MemorySegment rxSeg;
    private final UnsafeBuffer rxBuf;
    private final MemorySegment rxState;
    private final Counters<Counter> counters = new Counters<>(Counter.class);
    /** Length (vnet header included) of a frame read but not yet taken by the guest, or -1. */
    private int pending = -1;
    /** The poller told the listener and waits for {@link #receive} to drain the fd. */
    private final AtomicBoolean signalled = new AtomicBoolean();
    private volatile Runnable listener;
    private volatile boolean closed;
    private final Thread poller;

    private TapBackend(Tun tun) {
        this.tun = tun;
        this.hdr = tun.vnetHeaderLength();
        this.txSeg = arena.allocate(hdr + MAX_FRAME, 64);
        this.txBuf = new UnsafeBuffer(txSeg.address(), (int) txSeg.byteSize());
        this.txState = Tun.newCallState(arena);
        this.rxSeg = arena.allocate(hdr + MAX_FRAME, 64);
        this.rxBuf = new UnsafeBuffer(rxSeg.address(), (int) rxSeg.byteSize());
        this.rxState = Tun.newCallState(arena);
        // The vnet header going out stays all zero: no checksum offload, no GSO (virtio 1.2 §5.1.6.2).
        this.poller = Thread.ofPlatform().daemon().name("tap-" + tun.name()).unstarted(this::pollLoop);
    }

    /** Attaches to (or creates) TAP interface {@code name} and starts waiting for its frames. */
    public static TapBackend open(String name) throws dev.loomvisor.vhost.sys.NativeException {
        var b = new TapBackend(Tun.open(name));
        b.poller.start();
        return b;
    }

    public Counters<Counter> counters() {
        return counters;
    }

    public String name() {
        return tun.name();
    }

    /** True when frames carry a virtio_net_hdr on the fd (the kernel offered IFF_VNET_HDR). */
    public boolean vnetHeader() {
        return hdr != 0;
    }

    @Override
    public boolean transmit(DirectBuffer frame, int offset, int length) {
        if (length > MAX_FRAME) {
            counters.addOrdered(Counter.TX_DROP_WRITE, 1);
            return false;
        }
        txBuf.putBytes(hdr, frame, offset, length);
        long r = tun.write(txState, txSeg, hdr + length);
        if (r < 0) {
            counters.addOrdered(Counter.TX_DROP_WRITE, 1);
            return false;
        }
        counters.addOrdered(Counter.TX_FRAMES, 1);
        counters.addOrdered(Counter.TX_BYTES, length);
        return true;
    }

    @Override
    public int receive(FrameReceiver receiver, int limit) {
        int n = 0;
        while (n < limit && !closed) {
            if (pending < 0) {
                long r = tun.read(rxState, rxSeg, hdr + MAX_FRAME);
                if (r < 0) {
                    if (r != -Tun.EAGAIN) {
                        counters.addOrdered(Counter.RX_ERRORS, 1);
                    }
                    rearm();
                    break;
                }
                if (r <= hdr) {
                    continue;
                }
                pending = (int) r;
            }
            if (!receiver.onFrame(rxBuf, hdr, pending - hdr)) {
                break;
            }
            counters.addOrdered(Counter.RX_FRAMES, 1);
            counters.addOrdered(Counter.RX_BYTES, pending - hdr);
            pending = -1;
            n++;
        }
        return n;
    }

    /** The fd is drained: the poller may wait for the next frame. */
    private void rearm() {
        if (signalled.compareAndSet(true, false)) {
            LockSupport.unpark(poller);
        }
    }

    @Override
    public boolean rxPending() {
        return pending >= 0 || signalled.get();
    }

    @Override
    public void setRxListener(Runnable listener) {
        this.listener = listener;
        if (listener != null && rxPending()) {
            listener.run();
        }
    }

    private void pollLoop() {
        while (!closed) {
            if (!tun.awaitReadable() || closed) {
                continue;
            }
            signalled.set(true);
            Runnable l = listener;
            if (l != null) {
                l.run();
            }
            while (signalled.get() && !closed) {
                LockSupport.park(this);
            }
        }
    }

    /** Stops the poller and closes the TAP fd (a TAP this process created disappears). Idempotent. */
    public void shutdown() {
        if (closed) {
            return;
        }
        closed = true;
        tun.wakeUp();
        LockSupport.unpark(poller);
        try {
            poller.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        tun.close();
        arena.close();
    }
}
