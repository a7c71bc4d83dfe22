package dev.loomvisor.vmm.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Guest RAM as a real VMM maps it: mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE), so the kernel hands
 * out zero pages on first touch and an idle guest costs only the pages its rings and buffers touched
 * (QEMU's anonymous RAM blocks do the same). {@link Arena#allocate} would zero, and so touch, every byte.
 * The mapping is unmapped when its arena closes. Where mmap is not there (not Linux) the arena allocates.
 * Public for host-side buffers with the same need (the switch's port queues: sized for a burst, mostly empty).
 */
public final class AnonymousMapping {

    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = 0x20;
    private static final int MAP_NORESERVE = 0x4000;
    private static final long MAP_FAILED = -1L;

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;

    static {
        Linker linker = Linker.nativeLinker();
        var lookup = linker.defaultLookup();
        var mmap = lookup.find("mmap");
        var munmap = lookup.find("munmap");
        if (mmap.isPresent() && munmap.isPresent() && System.getProperty("os.name", "").startsWith("Linux")) {
            MMAP = linker.downcallHandle(mmap.get(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_LONG), Linker.Option.captureCallState("errno"));
            MUNMAP = linker.downcallHandle(munmap.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        } else {
            MMAP = null;
            MUNMAP = null;
        }
    }

    private AnonymousMapping() {}

    /**
     * {@code size} bytes of zero-filled private memory, page-aligned, unmapped when {@code arena} closes.
     *
     * @throws OutOfMemoryError if the kernel refuses the mapping (ENOMEM: address space or map count)
     */
    public static MemorySegment map(Arena arena, long size) {
        if (MMAP == null) {
            return arena.allocate(size, 4096);
        }
        long addr;
        int errno;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(CAPTURE);
            MemorySegment p = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, size,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
            addr = p.address();
            errno = (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap of " + size + " bytes", t);
        }
        if (addr == MAP_FAILED || addr == 0) {
            throw new OutOfMemoryError("mmap of " + size + " bytes of guest memory failed: errno " + errno);
        }
        long mapped = addr;
        return MemorySegment.ofAddress(addr).reinterpret(size, arena, s -> unmap(mapped, size));
    }

    /** The arena's cleanup. munmap of a whole mapping we made fails only for a bad argument: nothing to do then. */
    private static void unmap(long addr, long size) {
        try {
            int rc = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(addr), size);
            assert rc == 0 : "munmap " + Long.toHexString(addr) + "+" + size;
        } catch (Throwable t) {
            // Called while an arena closes: throwing would leave the other regions mapped.
        }
    }
}
