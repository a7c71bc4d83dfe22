package dev.loomvisor.vhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Native blocks of one size, reused: a block given back goes to the next taker. The blocks come from the
 * global arena and are never freed, so the pool holds at most as many blocks as were ever in use at once.
 *
 * <p>Why a pool: closing a shared arena handshakes with every live thread (to be sure none is inside an
 * access), so a per-connection shared arena makes each close slower the more threads exist, which is
 * exactly what happens when connections churn. Taking and giving a block is a lock-free deque operation.
 */
public final class SegmentPool {

    private final long blockSize;
    private final ConcurrentLinkedDeque<MemorySegment> free = new ConcurrentLinkedDeque<>();
    private final AtomicLong made = new AtomicLong();

    /** @param blockSize bytes of every block (aligned to 16) */
    public SegmentPool(long blockSize) {
        if (blockSize <= 0) {
            throw new IllegalArgumentException("block size " + blockSize);
        }
        this.blockSize = blockSize;
    }

    /** A block of {@link #blockSize()} bytes, zeroed. */
    public MemorySegment take() {
        MemorySegment s = free.pollFirst();
        if (s == null) {
            made.incrementAndGet();
            return Arena.global().allocate(blockSize, 16);
        }
        s.fill((byte) 0);
        return s;
    }

    /** Gives a block taken from this pool back; the caller no longer touches it. */
    public void give(MemorySegment block) {
        if (block.byteSize() != blockSize) {
            throw new IllegalArgumentException("a block of " + block.byteSize() + " bytes is not from this pool");
        }
        free.offerFirst(block);
    }

    public long blockSize() {
        return blockSize;
    }

    /** Blocks allocated so far (the pool's native footprint is this times the block size). */
    public long blocksMade() {
        return made.get();
    }
}
