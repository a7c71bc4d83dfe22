package dev.loomvisor.vmm.memory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A guest's physical memory: non-overlapping {@link GuestRegion}s, and the one place where a guest-physical
 * range becomes host memory.
 *
 * <p>Every range the guest names (ring addresses, descriptor buffers, indirect tables) goes through
 * {@link #regionOf(long, long)}: the range must lie wholly inside one region, and the address arithmetic
 * is done so that no guest value can wrap it (the guest controls 64-bit addresses and 32-bit lengths).
 * Translation allocates nothing and reports failures as {@link MemoryError}s.
 *
 * <p>Closing the memory frees or unmaps every region; the owner must stop all users (vCPUs, vhost
 * workers) first.
 */
public final class GuestMemory implements AutoCloseable {

    private final GuestRegion[] regions;
    private final long firstBase;
    private final long firstSize;
    private final Arena arena;
    private final long mappedBytes;
    private final AtomicBoolean closed = new AtomicBoolean();

    /** Live (built, not closed) memories, their regions and bytes: the leak figures of the churn checks. */
    private static final AtomicLong LIVE_MEMORIES = new AtomicLong();
    private static final AtomicLong LIVE_REGIONS = new AtomicLong();
    private static final AtomicLong LIVE_BYTES = new AtomicLong();

    private GuestMemory(GuestRegion[] regions, Arena arena) {
        this.regions = regions;
        this.firstBase = regions[0].guestBase();
        this.firstSize = regions[0].size();
        this.arena = arena;
        long bytes = 0;
        for (GuestRegion r : regions) {
            bytes += r.size();
        }
        this.mappedBytes = bytes;
        LIVE_MEMORIES.incrementAndGet();
        LIVE_REGIONS.addAndGet(regions.length);
        LIVE_BYTES.addAndGet(bytes);
    }

    /** Guest memories built and not yet closed, in this JVM. */
    public static long liveMemories() {
        return LIVE_MEMORIES.get();
    }

    /** Regions of the live guest memories (wrapped ones included). */
    public static long liveRegions() {
        return LIVE_REGIONS.get();
    }

    /** Bytes of the live guest memories' regions: what they map or allocate (or wrap). */
    public static long liveBytes() {
        return LIVE_BYTES.get();
    }

    /** One anonymous region of {@code size} bytes at guest-physical {@code base}. */
    public static GuestMemory anonymous(long base, long size) {
        return builder().anonymous(base, size).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public int regionCount() {
        return regions.length;
    }

    public GuestRegion region(int index) {
        return regions[index];
    }

    /**
     * The index of the region holding all of {@code [gpa, gpa + len)}, or a negative code
     * {@code -error.ordinal()} (decode with {@link #errorOf(int)}). {@code gpa} is an unsigned 64-bit guest
     * address; {@code len} a length in bytes (descriptor lengths are u32, passed widened).
     */
    public int regionOf(long gpa, long len) {
        if (len < 0) {
            return -MemoryError.NEGATIVE_LENGTH.ordinal();
        }
        // Unsigned: gpa + len below gpa means the range wraps past 2^64 - 1.
        if (Long.compareUnsigned(gpa + len, gpa) < 0) {
            return -MemoryError.ADDRESS_OVERFLOW.ordinal();
        }
        // The first region (often the only one) without touching the array: the descriptor hot path.
        long off = gpa - firstBase;
        if (gpa >= firstBase && off <= firstSize - len) {
            return 0;
        }
        GuestRegion[] rs = regions;
        for (int i = 1; i < rs.length; i++) {
            if (rs[i].contains(gpa, len)) {
                return i;
            }
        }
        for (GuestRegion r : rs) {
            // gpa < 0 as a signed long is >= 2^63 unsigned: above every region, so never "inside" one.
            if (gpa >= r.guestBase() && gpa - r.guestBase() < r.size()) {
                return -MemoryError.CROSSES_REGION_END.ordinal();
            }
        }
        return -MemoryError.UNMAPPED.ordinal();
    }

    /** The error a negative {@link #regionOf} result stands for ({@link MemoryError#NONE} for an index). */
    public static MemoryError errorOf(int code) {
        return code >= 0 ? MemoryError.NONE : MemoryError.values()[-code];
    }

    /** Translates {@code [gpa, gpa + len)} into {@code out}; {@link MemoryError#NONE} on success. */
    public MemoryError translate(long gpa, long len, Translation out) {
        int r = regionOf(gpa, len);
        if (r < 0) {
            return errorOf(r);
        }
        GuestRegion region = regions[r];
        out.region = region;
        out.offset = (int) (gpa - region.guestBase());
        out.length = (int) len;
        return MemoryError.NONE;
    }

    /** Copies {@code len} bytes from guest memory into {@code dst}; throws for a bad range (setup code, tests). */
    public void read(long gpa, byte[] dst, int off, int len) {
        Translation t = checked(gpa, len);
        t.buffer().getBytes(t.offset(), dst, off, len);
    }

    /** Copies {@code len} bytes into guest memory; throws for a bad range (setup code, tests). */
    public void write(long gpa, byte[] src, int off, int len) {
        Translation t = checked(gpa, len);
        t.buffer().putBytes(t.offset(), src, off, len);
    }

    /** Zeroes {@code len} bytes of guest memory; throws for a bad range. */
    public void zero(long gpa, int len) {
        Translation t = checked(gpa, len);
        t.buffer().setMemory(t.offset(), len, (byte) 0);
    }

    private Translation checked(long gpa, long len) {
        Translation t = new Translation();
        MemoryError e = translate(gpa, len, t);
        if (e != MemoryError.NONE) {
            throw new IllegalArgumentException("guest range 0x" + Long.toHexString(gpa) + "+" + len + ": " + e.rule());
        }
        return t;
    }

    @Override
    public void close() {
        // Idempotent: a second close (owner and device both letting go) must neither throw from the
        // arena nor count the memory twice.
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        LIVE_MEMORIES.decrementAndGet();
        LIVE_REGIONS.addAndGet(-regions.length);
        LIVE_BYTES.addAndGet(-mappedBytes);
        if (arena != null) {
            arena.close();
        }
    }

    /** Builds a {@link GuestMemory}; regions may be given in any order but must not overlap. */
    public static final class Builder {
        private final Arena arena = Arena.ofShared();
        private final List<GuestRegion> regions = new ArrayList<>();

        /**
         * A zeroed region of private anonymous memory, mapped, not touched: it costs host pages only as the
         * guest (or the device) touches them.
         */
        public Builder anonymous(long base, long size) {
            checkSize(size);
            MemorySegment s = AnonymousMapping.map(arena, size);
            regions.add(new GuestRegion(base, s, GuestRegion.Backing.ANONYMOUS, null, -1, true));
            return this;
        }

        /** A region mapped shared from {@code file}, created or extended to {@code size} bytes. */
        public Builder file(long base, long size, Path file) {
            checkSize(size);
            regions.add(new GuestRegion(base, mapShared(file, size), GuestRegion.Backing.FILE, file, -1));
            return this;
        }

        /**
         * A region backed by a memfd, so another process can map it from the fd (vhost-user's
         * SET_MEM_TABLE passes such fds). Needs Linux; the fd stays open until the JVM exits.
         */
        public Builder memfd(long base, long size, String name) {
            checkSize(size);
            int fd = Memfd.create(name);
            Path p = Path.of("/proc/self/fd/" + fd);
            regions.add(new GuestRegion(base, mapShared(p, size), GuestRegion.Backing.MEMFD, p, fd, true));
            return this;
        }

        /** A region over caller-provided host memory (tests use it to put guard bands around a region). */
        public Builder wrap(long base, MemorySegment segment) {
            regions.add(new GuestRegion(base, segment, GuestRegion.Backing.ANONYMOUS, null, -1));
            return this;
        }

        public GuestMemory build() {
            if (regions.isEmpty()) {
                throw new IllegalStateException("guest memory needs at least one region");
            }
            GuestRegion[] rs = regions.toArray(new GuestRegion[0]);
            java.util.Arrays.sort(rs, Comparator.comparingLong(GuestRegion::guestBase));
            for (int i = 1; i < rs.length; i++) {
                if (rs[i].guestBase() < rs[i - 1].guestEnd()) {
                    throw new IllegalArgumentException(rs[i] + " overlaps " + rs[i - 1]);
                }
            }
            return new GuestMemory(rs, arena);
        }

        private MemorySegment mapShared(Path file, long size) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                if (ch.size() < size) {
                    // Extend the file (sparse) by writing its last byte; mapping past EOF would fault.
                    ch.write(java.nio.ByteBuffer.wrap(new byte[1]), size - 1);
                }
                // The mapping outlives the channel; it is unmapped when the arena closes.
                return ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            } catch (IOException e) {
                throw new UncheckedIOException("mapping " + file, e);
            }
        }

        private static void checkSize(long size) {
            if (size <= 0 || size > GuestRegion.MAX_SIZE) {
                throw new IllegalArgumentException("region size " + size + " outside (0, " + GuestRegion.MAX_SIZE + "]");
            }
        }
    }

    /** memfd_create(2) through the FFM linker. */
    private static final class Memfd {
        private static final MethodHandle MEMFD_CREATE;

        static {
            Linker linker = Linker.nativeLinker();
            MEMFD_CREATE = linker.defaultLookup().find("memfd_create")
                    .map(a -> linker.downcallHandle(a, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                            ValueLayout.ADDRESS, ValueLayout.JAVA_INT)))
                    .orElse(null);
        }

        static int create(String name) {
            if (MEMFD_CREATE == null) {
                throw new UnsupportedOperationException("memfd_create is not available on this platform");
            }
            try (Arena a = Arena.ofConfined()) {
                int fd = (int) MEMFD_CREATE.invokeExact(a.allocateFrom(name), 0);
                if (fd < 0) {
                    throw new UncheckedIOException(new IOException("memfd_create(" + name + ") failed"));
                }
                return fd;
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }
}
