package dev.loomvisor.vhost.user.testing;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.Libc;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.VhostUserRequest;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A vhost-user front-end for tests and tools (what QEMU or DPDK's virtio-user does): guest memory in a
 * memfd mapped here and handed to the backend, split rings driven by {@link DriverQueue}, real eventfds
 * for kicks and calls. Raw messages ({@link #send}, {@link #sendRaw}) let hostile-peer tests break the
 * protocol on purpose. One thread drives a front-end.
 *
 * <p>Memory layout: one region at guest-physical {@link #GPA_BASE}, whose front-end virtual address is
 * wherever the memfd got mapped here (so vring addresses really need translating). Each ring gets its
 * rings then {@code size} buffers of {@link #BUFFER_SIZE} bytes, buffer {@code i} for descriptor head i.
 */
public final class VhostUserFrontend implements AutoCloseable {

    public static final long GPA_BASE = 0x4000_0000L;
    public static final int BUFFER_SIZE = 2048;
    private static final long PAGE = 4096;

    /** Driver state of one vring. */
    public static final class Vring {
        final int index;
        final DriverQueue queue;
        final long buffers;
        final EventFd kick;
        final EventFd call;
        /** Buffer slots not in flight (a stack); a chain's cookie is its slot. */
        final int[] freeSlots;
        int nFree;
        long calls;

        Vring(int index, DriverQueue queue, long buffers, EventFd kick, EventFd call) {
            this.index = index;
            this.queue = queue;
            this.buffers = buffers;
            this.kick = kick;
            this.call = call;
            this.freeSlots = new int[queue.size()];
            for (int i = 0; i < freeSlots.length; i++) {
                freeSlots[i] = freeSlots.length - 1 - i;
            }
            this.nFree = freeSlots.length;
        }

        int takeSlot() {
            return freeSlots[--nFree];
        }

        void freeSlot(int slot) {
            freeSlots[nFree++] = slot;
        }

        public DriverQueue queue() {
            return queue;
        }

        /** Kicks the backend (as after publishing), whatever the ring's suppression says. */
        public void kickForTest() {
            kick.signal();
        }

        /** Call signals drained so far. */
        public long calls() {
            return calls;
        }
    }

    private final UnixSocket socket;
    private final int memfd;
    private final long memSize;
    private final long uvaBase;
    private final GuestMemory memory;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment txBuf;
    private final MemorySegment rxBuf;
    private final int[] noFds = new int[VhostUser.MAX_FDS];
    private final Vring[] vrings = new Vring[256];
    private final UsedElement used = new UsedElement();
    private long nextFree;
    private boolean eventIdx;
    private boolean mergeable;

    private VhostUserFrontend(UnixSocket socket, int memfd, long memSize, long uvaBase) {
        this.socket = socket;
        this.memfd = memfd;
        this.memSize = memSize;
        this.uvaBase = uvaBase;
        this.memory = GuestMemory.builder().wrap(GPA_BASE, MemorySegment.ofAddress(uvaBase).reinterpret(memSize)).build();
        this.txBuf = arena.allocate(VhostUser.HEADER_SIZE + VhostUser.MAX_PAYLOAD + 64, 8);
        this.rxBuf = arena.allocate(VhostUser.HEADER_SIZE + VhostUser.MAX_PAYLOAD, 8);
    }

    /** Connects to the backend at {@code socket} with {@code memSize} bytes of guest memory (a memfd). */
    public static VhostUserFrontend connect(Path socket, long memSize) throws IOException {
        int fd = Libc.memfdCreate("vhost-user-frontend", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
        try {
            Libc.ftruncate(fd, memSize);
            long addr = Libc.mmap(memSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            UnixSocket s;
            try {
                s = UnixSocket.connect(socket);
            } catch (NativeException e) {
                Libc.munmap(addr, memSize);
                throw e;
            }
            return new VhostUserFrontend(s, fd, memSize, addr);
        } catch (NativeException | RuntimeException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    public GuestMemory memory() {
        return memory;
    }

    public int memfd() {
        return memfd;
    }

    /** The front-end virtual address of guest-physical {@code gpa}. */
    public long uva(long gpa) {
        return uvaBase + (gpa - GPA_BASE);
    }

    public Vring vring(int index) {
        return vrings[index];
    }

    // ---- raw messages ----

    /** Sends a message with the given header fields, payload and fds, as is (no checks). */
    public void send(int request, int flags, byte[] payload, int... fds) throws NativeException {
        send(request, flags, payload.length, payload, fds);
    }

    /** Sends a header claiming {@code size} bytes followed by {@code payload} (which may be shorter or longer). */
    public void send(int request, int flags, int size, byte[] payload, int... fds) throws NativeException {
        txBuf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST, request);
        txBuf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS, flags);
        txBuf.set(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE, size);
        MemorySegment.copy(payload, 0, txBuf, JAVA_BYTE, VhostUser.HEADER_SIZE, payload.length);
        socket.send(txBuf, VhostUser.HEADER_SIZE + payload.length, fds, fds.length);
    }

    /** Sends raw bytes with fds (a truncated header, garbage...). */
    public void sendRaw(byte[] bytes, int... fds) throws NativeException {
        MemorySegment.copy(bytes, 0, txBuf, JAVA_BYTE, 0, bytes.length);
        socket.send(txBuf, bytes.length, fds, fds.length);
    }

    /** Closes the sending direction: the backend reads end of stream after what was sent. */
    public void shutdownOutput() throws NativeException {
        Libc.shutdown(socket.fd(), 1 /* SHUT_WR */);
    }

    /** Sends a request of the current protocol version. */
    public void request(VhostUserRequest r, byte[] payload, int... fds) throws NativeException {
        send(r.code(), VhostUser.VERSION, payload, fds);
    }

    /** Reads one reply; returns its payload. Throws if the backend closed or the reply is not for {@code r}. */
    public byte[] reply(VhostUserRequest r) throws IOException {
        int got = socket.recv(rxBuf, VhostUser.HEADER_SIZE, noFds);
        for (int i = 0; i < socket.lastFdCount(); i++) {
            Libc.closeQuietly(noFds[i]);
        }
        if (got < VhostUser.HEADER_SIZE) {
            throw new IOException("backend closed the connection awaiting the reply to " + r);
        }
        int code = rxBuf.get(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST);
        int flags = rxBuf.get(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS);
        int size = rxBuf.get(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE);
        if (code != r.code() || (flags & VhostUser.FLAG_REPLY) == 0 || size < 0 || size > VhostUser.MAX_PAYLOAD) {
            throw new IOException("bad reply to " + r + ": request " + code + " flags 0x" + Integer.toHexString(flags)
                    + " size " + size);
        }
        if (size > 0 && socket.recv(rxBuf, size, noFds) < size) {
            throw new IOException("backend closed the connection inside the reply to " + r);
        }
        return rxBuf.asSlice(0, size).toArray(JAVA_BYTE);
    }

    /** True if the backend closed the connection (reads end of stream; blocks until something comes). */
    public boolean readsEof() throws NativeException {
        return socket.recv(rxBuf, 1, noFds) == 0;
    }

    /** A u64 payload. */
    public static byte[] u64(long v) {
        byte[] b = new byte[8];
        MemorySegment.ofArray(b).set(JAVA_LONG_UNALIGNED, 0, v);
        return b;
    }

    /** A vring state payload {index, num}. */
    public static byte[] state(int index, int num) {
        byte[] b = new byte[8];
        MemorySegment s = MemorySegment.ofArray(b);
        s.set(JAVA_INT_UNALIGNED, 0, index);
        s.set(JAVA_INT_UNALIGNED, 4, num);
        return b;
    }

    private static long readU64(byte[] b) {
        return MemorySegment.ofArray(b).get(JAVA_LONG_UNALIGNED, 0);
    }

    // ---- typed requests ----

    public long getFeatures() throws IOException {
        request(VhostUserRequest.GET_FEATURES, new byte[0]);
        return readU64(reply(VhostUserRequest.GET_FEATURES));
    }

    public void setFeatures(long f) throws NativeException {
        eventIdx = NetFeatures.has(f, NetFeatures.EVENT_IDX);
        mergeable = NetFeatures.has(f, NetFeatures.MRG_RXBUF);
        request(VhostUserRequest.SET_FEATURES, u64(f));
    }

    public void setOwner() throws NativeException {
        request(VhostUserRequest.SET_OWNER, new byte[0]);
    }

    public long getProtocolFeatures() throws IOException {
        request(VhostUserRequest.GET_PROTOCOL_FEATURES, new byte[0]);
        return readU64(reply(VhostUserRequest.GET_PROTOCOL_FEATURES));
    }

    public void setProtocolFeatures(long f) throws NativeException {
        request(VhostUserRequest.SET_PROTOCOL_FEATURES, u64(f));
    }

    public long getQueueNum() throws IOException {
        request(VhostUserRequest.GET_QUEUE_NUM, new byte[0]);
        return readU64(reply(VhostUserRequest.GET_QUEUE_NUM));
    }

    /** SET_MEM_TABLE of the whole memfd as one region. */
    public void setMemTable() throws NativeException {
        request(VhostUserRequest.SET_MEM_TABLE, memTable(new long[][] {{GPA_BASE, memSize, uvaBase, 0}}),
                memfd);
    }

    /** A SET_MEM_TABLE payload of {gpa, size, uva, mmap_offset} regions. */
    public static byte[] memTable(long[][] regions) {
        byte[] b = new byte[VhostUser.MEM_REGIONS + VhostUser.REGION_SIZE * regions.length];
        MemorySegment s = MemorySegment.ofArray(b);
        s.set(JAVA_INT_UNALIGNED, VhostUser.MEM_NREGIONS, regions.length);
        for (int i = 0; i < regions.length; i++) {
            long at = VhostUser.MEM_REGIONS + (long) i * VhostUser.REGION_SIZE;
            s.set(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_GPA, regions[i][0]);
            s.set(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_LEN, regions[i][1]);
            s.set(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_UVA, regions[i][2]);
            s.set(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_MMAP_OFFSET, regions[i][3]);
        }
        return b;
    }

    public byte[] memTableOf(long[][] regions) {
        return memTable(regions);
    }

    public long uvaBase() {
        return uvaBase;
    }

    public long memSize() {
        return memSize;
    }

    public void setVringNum(int index, int num) throws NativeException {
        request(VhostUserRequest.SET_VRING_NUM, state(index, num));
    }

    /** SET_VRING_ADDR with front-end virtual addresses. */
    public void setVringAddr(int index, long descUva, long usedUva, long availUva) throws NativeException {
        byte[] b = new byte[40];
        MemorySegment s = MemorySegment.ofArray(b);
        s.set(JAVA_INT_UNALIGNED, VhostUser.ADDR_INDEX, index);
        s.set(JAVA_LONG_UNALIGNED, VhostUser.ADDR_DESC, descUva);
        s.set(JAVA_LONG_UNALIGNED, VhostUser.ADDR_USED, usedUva);
        s.set(JAVA_LONG_UNALIGNED, VhostUser.ADDR_AVAIL, availUva);
        request(VhostUserRequest.SET_VRING_ADDR, b);
    }

    public void setVringBase(int index, int base) throws NativeException {
        request(VhostUserRequest.SET_VRING_BASE, state(index, base));
    }

    /** GET_VRING_BASE: stops the ring; the next avail index the backend would have used. */
    public int getVringBase(int index) throws IOException {
        request(VhostUserRequest.GET_VRING_BASE, state(index, 0));
        byte[] r = reply(VhostUserRequest.GET_VRING_BASE);
        return MemorySegment.ofArray(r).get(JAVA_INT_UNALIGNED, 4);
    }

    public void setVringKick(int index, int fd) throws NativeException {
        request(VhostUserRequest.SET_VRING_KICK, u64(index), fd);
    }

    public void setVringCall(int index, int fd) throws NativeException {
        request(VhostUserRequest.SET_VRING_CALL, u64(index), fd);
    }

    public void setVringErr(int index, int fd) throws NativeException {
        request(VhostUserRequest.SET_VRING_ERR, u64(index), fd);
    }

    public void setVringEnable(int index, boolean enable) throws NativeException {
        request(VhostUserRequest.SET_VRING_ENABLE, state(index, enable ? 1 : 0));
    }

    // ---- the usual start-up ----

    /**
     * What QEMU does before a guest runs: features ({@code wanted} & offered, with PROTOCOL_FEATURES and
     * REPLY_ACK... as offered), owner, memory table. Returns the features acknowledged.
     */
    public long handshake(long wanted) throws IOException {
        setOwner();
        long offered = getFeatures();
        long f = offered & wanted;
        if (NetFeatures.has(f, VhostUser.F_PROTOCOL_FEATURES)) {
            long pf = getProtocolFeatures();
            setProtocolFeatures(pf & (VhostUser.PF_MQ | VhostUser.PF_CONFIG | VhostUser.PF_MTU));
        }
        setFeatures(f);
        setMemTable();
        return f;
    }

    /**
     * Lays out vring {@code index} of {@code size} entries in guest memory, then SET_VRING_NUM, ADDR,
     * BASE 0, CALL, KICK (and ENABLE 1 if {@code enable}). RX rings (even) are filled with writable
     * buffers first, so the backend can deliver at once.
     */
    public Vring setupVring(int index, int size, boolean enable) throws NativeException {
        long desc = alloc(SplitRing.descTableSize(size), PAGE);
        long avail = alloc(SplitRing.availRingSize(size), PAGE);
        long usedAddr = alloc(SplitRing.usedRingSize(size), PAGE);
        long buffers = alloc((long) size * BUFFER_SIZE, PAGE);
        memory.zero(desc, (int) (usedAddr + SplitRing.usedRingSize(size) - desc));
        DriverQueue q = new DriverQueue(memory, size, desc, avail, usedAddr, eventIdx);
        Vring v = new Vring(index, q, buffers, EventFd.create(), EventFd.create());
        vrings[index] = v;
        if (index % 2 == 0) {
            refillRx(v);
        }
        setVringNum(index, size);
        setVringAddr(index, uva(desc), uva(usedAddr), uva(avail));
        setVringBase(index, 0);
        setVringCall(index, v.call.fd());
        setVringKick(index, v.kick.fd());
        if (enable) {
            setVringEnable(index, true);
        }
        return v;
    }

    private long alloc(long len, long align) {
        long at = (nextFree + align - 1) & -align;
        if (at + len > memSize) {
            throw new IllegalStateException("guest memory of " + memSize + " bytes is full");
        }
        nextFree = at + len;
        return GPA_BASE + at;
    }

    private long buffer(Vring v, int head) {
        return v.buffers + (long) head * BUFFER_SIZE;
    }

    // ---- data ----

    /**
     * Queues {@code frame} (behind a zero 12-byte virtio-net header) on TX vring {@code index}, reaping
     * completed buffers first; kicks if the backend asks for it. False if the ring is full.
     */
    public boolean transmit(int index, byte[] frame) throws NativeException {
        Vring v = vrings[index];
        DriverQueue q = v.queue;
        reapTx(index);
        if (q.freeCount() == 0 || v.nFree == 0) {
            return false;
        }
        int slot = v.takeSlot();
        long buf = buffer(v, slot);
        memory.zero(buf, VirtioNetHeader.SIZE);
        memory.write(buf + VirtioNetHeader.SIZE, frame, 0, frame.length);
        q.add(buf, VirtioNetHeader.SIZE + frame.length, false, slot);
        if (q.publishAndCheckKick()) {
            v.kick.signal();
        }
        return true;
    }

    /** Reaps completed TX buffers of vring {@code index}; the number reaped. */
    public int reapTx(int index) {
        Vring v = vrings[index];
        DriverQueue q = v.queue;
        int n = 0;
        while (q.reap(used)) {
            v.freeSlot((int) used.cookie());
            n++;
        }
        return n;
    }

    /** Gives every free descriptor of RX vring {@code v} a fresh writable buffer and kicks if asked. */
    private void refillRx(Vring v) {
        DriverQueue q = v.queue;
        boolean added = false;
        while (q.freeCount() > 0 && v.nFree > 0) {
            int slot = v.takeSlot();
            q.add(buffer(v, slot), BUFFER_SIZE, true, slot);
            added = true;
        }
        if (added && q.publishAndCheckKick()) {
            v.kick.signal();
        }
    }

    /** Receives a frame from the backend. */
    @FunctionalInterface
    public interface FrameSink {
        /** {@code frame} holds the frame without the virtio-net header; {@code numBuffers} from that header. */
        void frame(byte[] frame, int numBuffers);
    }

    /**
     * Takes every frame the backend delivered on RX vring {@code index} (single-buffer frames: buffers of
     * 2048 bytes hold a full-size frame), refills the ring. Returns frames taken.
     */
    public int receive(int index, FrameSink sink) {
        Vring v = vrings[index];
        DriverQueue q = v.queue;
        int n = 0;
        while (q.reap(used)) {
            long buf = buffer(v, (int) used.cookie());
            byte[] all = new byte[used.len()];
            memory.read(buf, all, 0, all.length);
            int numBuffers = all.length >= VirtioNetHeader.SIZE
                    ? MemorySegment.ofArray(all).get(JAVA_SHORT_UNALIGNED, VirtioNetHeader.NUM_BUFFERS) & 0xffff : 0;
            byte[] frame = new byte[Math.max(0, all.length - VirtioNetHeader.SIZE)];
            System.arraycopy(all, Math.min(all.length, VirtioNetHeader.SIZE), frame, 0, frame.length);
            v.freeSlot((int) used.cookie());
            sink.frame(frame, numBuffers);
            n++;
        }
        refillRx(v);
        return n;
    }

    /** Drains the call eventfd of vring {@code index}; the count read (0 if no call came). */
    public long drainCalls(int index) {
        Vring v = vrings[index];
        long c = v.call.drain();
        v.calls += c;
        return c;
    }

    /**
     * Waits until vring {@code index} has used entries to reap, up to {@code timeout}; true if it has. Polls
     * the ring (and counts calls) with short parks: a bounded wait for a condition, not a sleep.
     */
    public boolean awaitUsed(int index, long timeout, TimeUnit unit) {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        DriverQueue q = vrings[index].queue;
        while (!q.hasUsed()) {
            drainCalls(index);
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            LockSupport.parkNanos(20_000);
        }
        drainCalls(index);
        return true;
    }

    /** Closes the connection, the eventfds, and unmaps the memory. */
    @Override
    public void close() {
        socket.shutdown();
        socket.close();
        for (Vring v : vrings) {
            if (v != null) {
                v.kick.close();
                v.call.close();
            }
        }
        try {
            Libc.munmap(uvaBase, memSize);
        } catch (NativeException ignored) {
            // Nothing else maps there.
        }
        Libc.closeQuietly(memfd);
        arena.close();
    }
}
