package dev.loomvisor.vhost.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Native blocks of one size, reused: a block given back goes to the next taker; beyond {@code maxSpare}
 * spare blocks, a block given back is left to the GC (each block has its own automatic arena, which the
 * GC frees without a handshake).
 *
 * <p>Why a pool: closing a shared arena handshakes with every live thread (to be sure none is inside an
 * access), so a per-connection or per-device shared arena makes each close slower the more threads exist,
 * which is exactly what happens when sessions churn. Taking and giving a block is a lock-free deque
 * operation, and the memory of sessions that come and go one after another is reused, not allocated anew.
 */
public final class SegmentPool {

    private final long blockSize;
    private final int maxSpare;
    private final ConcurrentLinkedDeque<MemorySegment> free = new ConcurrentLinkedDeque<>();
    private final AtomicInteger spare = new AtomicInteger();
    private final AtomicLong made = new AtomicLong();

    /**
     * @param blockSize bytes of every block (aligned to 64)
     * @param maxSpare blocks kept for reuse at most
     */
    public SegmentPool(long blockSize, int maxSpare) {
        if (blockSize <= 0 || maxSpare < 0) {
            throw new IllegalArgumentException("block size " + blockSize + ", spare " + maxSpare);
        }
        this.blockSize = blockSize;
        this.maxSpare = maxSpare;
    }

    /** A block of {@link #blockSize()} bytes, zeroed. */
    public MemorySegment take() {
        MemorySegment s = free.pollFirst();
        if (s == null) {
            made.incrementAndGet();
            return Arena.ofAuto().allocate(blockSize, 64);
        }
        spare.decrementAndGet();
        s.fill((byte) 0);
        return s;
    }

    /** Gives a block taken from this pool back; the caller no longer touches it. */
    public void give(MemorySegment block) {
        if (block.byteSize() != blockSize) {
            throw new IllegalArgumentException("a block of " + block.byteSize() + " bytes is not from this pool");
        }
        if (spare.incrementAndGet() <= maxSpare) {
            free.offerFirst(block);
        } else {
            spare.decrementAndGet(); // left to the GC
        }
    }

    public long blockSize() {
        return blockSize;
    }

    /** Blocks allocated so far. */
    public long blocksMade() {
        return made.get();
    }
}
