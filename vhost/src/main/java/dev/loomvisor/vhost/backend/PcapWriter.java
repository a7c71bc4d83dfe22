package dev.loomvisor.vhost.backend;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Writes Ethernet frames to a pcap file (the libpcap format of tcpdump and Wireshark): magic 0xa1b23c4d
 * (nanosecond timestamps), version 2.4, LINKTYPE_ETHERNET (1), each frame cut to the snap length.
 *
 * <p>Frames are copied into one direct buffer and the buffer goes to the file when it fills, so a frame
 * costs a copy and no allocation. Several workers may write (each device's TX and RX side): a lock, which
 * parks a virtual thread rather than pinning it, keeps records whole. Timestamps are the wall clock at
 * open plus {@link System#nanoTime()} since, so reading the clock allocates nothing either. A write error
 * stops the capture (counted in {@link #failed()}), never the data path.
 */
public final class PcapWriter implements AutoCloseable {

    /** pcap's magic for nanosecond timestamps, in the writer's byte order. */
    public static final int MAGIC_NANOS = 0xa1b23c4d;
    public static final int LINKTYPE_ETHERNET = 1;
    public static final int MAX_SNAPLEN = 262144;
    private static final int RECORD_HEADER = 16;
    private static final int BUFFER_BYTES = 1 << 20;

    private final FileChannel channel;
    private final int snaplen;
    private final ByteBuffer bytes = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    private final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
    private final ReentrantLock lock = new ReentrantLock();
    private final long epochNanosAtOpen;
    private final long nanoTimeAtOpen;
    private int position;
    private long frames;
    private volatile boolean failed;
    private boolean closed;

    private PcapWriter(FileChannel channel, int snaplen) {
        this.channel = channel;
        this.snaplen = snaplen;
        this.epochNanosAtOpen = System.currentTimeMillis() * 1_000_000L;
        this.nanoTimeAtOpen = System.nanoTime();
    }

    /**
     * Creates (or truncates) {@code file} and writes the file header.
     *
     * @param snaplen bytes kept of each frame, 1 to {@link #MAX_SNAPLEN}
     */
    public static PcapWriter open(Path file, int snaplen) throws IOException {
        if (snaplen < 1 || snaplen > MAX_SNAPLEN) {
            throw new IllegalArgumentException("snaplen must be 1 to " + MAX_SNAPLEN + ": " + snaplen);
        }
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        var w = new PcapWriter(ch, snaplen);
        w.buffer.putInt(0, MAGIC_NANOS, ByteOrder.LITTLE_ENDIAN);
        w.buffer.putShort(4, (short) 2, ByteOrder.LITTLE_ENDIAN);
        w.buffer.putShort(6, (short) 4, ByteOrder.LITTLE_ENDIAN);
        w.buffer.putInt(8, 0, ByteOrder.LITTLE_ENDIAN); // thiszone: timestamps are UTC
        w.buffer.putInt(12, 0, ByteOrder.LITTLE_ENDIAN); // sigfigs
        w.buffer.putInt(16, snaplen, ByteOrder.LITTLE_ENDIAN);
        w.buffer.putInt(20, LINKTYPE_ETHERNET, ByteOrder.LITTLE_ENDIAN);
        w.position = 24;
        return w;
    }

    public int snaplen() {
        return snaplen;
    }

    /** Appends one frame (its first {@link #snaplen()} bytes), time-stamped now. */
    public void write(DirectBuffer frame, int offset, int length) {
        if (failed) {
            return;
        }
        long ts = epochNanosAtOpen + (System.nanoTime() - nanoTimeAtOpen);
        int captured = Math.min(length, snaplen);
        lock.lock();
        try {
            if (closed) {
                return;
            }
            if (position + RECORD_HEADER + captured > BUFFER_BYTES) {
                drain();
            }
            buffer.putInt(position, (int) (ts / 1_000_000_000L), ByteOrder.LITTLE_ENDIAN);
            buffer.putInt(position + 4, (int) (ts % 1_000_000_000L), ByteOrder.LITTLE_ENDIAN);
            buffer.putInt(position + 8, captured, ByteOrder.LITTLE_ENDIAN);
            buffer.putInt(position + 12, length, ByteOrder.LITTLE_ENDIAN);
            buffer.putBytes(position + RECORD_HEADER, frame, offset, captured);
            position += RECORD_HEADER + captured;
            frames++;
        } finally {
            lock.unlock();
        }
    }

    /** Frames written so far. */
    public long frames() {
        lock.lock();
        try {
            return frames;
        } finally {
            lock.unlock();
        }
    }

    /** True once a write to the file failed; the capture stopped there. */
    public boolean failed() {
        return failed;
    }

    /** Writes what is buffered to the file. */
    public void flush() {
        lock.lock();
        try {
            if (!closed) {
                drain();
            }
        } finally {
            lock.unlock();
        }
    }

    private void drain() {
        bytes.clear().limit(position);
        try {
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        } catch (IOException e) {
            failed = true;
        }
        position = 0;
    }

    /** Flushes and closes the file. Idempotent. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            drain();
            closed = true;
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            lock.unlock();
        }
    }
}
