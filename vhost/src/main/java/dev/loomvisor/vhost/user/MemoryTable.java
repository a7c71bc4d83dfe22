package dev.loomvisor.vhost.user;

import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import dev.loomvisor.vhost.sys.Libc;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vmm.memory.GuestMemory;
import java.lang.foreign.MemorySegment;

/**
 * The front-end's memory as SET_MEM_TABLE describes it: each region's fd mapped shared (from file offset
 * 0 over mmap_offset + size, used from mmap_offset, as vhost-user.rst says), a {@link GuestMemory} over the
 * regions at their guest-physical addresses, and the translation of front-end virtual addresses (what
 * SET_VRING_ADDR carries) to guest-physical ones.
 *
 * <p>Every region is checked before anything is mapped: size 0, 64-bit overflow of any end, overlaps in
 * either address space, and a mapping past the end of a regular file (touching it would SIGBUS the JVM).
 * Where the fd allows it, the file is also sealed against shrinking later; a front-end that shrinks an
 * unsealable file under a running ring can still crash the backend (as it can any mmap-based backend).
 */
public final class MemoryTable implements AutoCloseable {

    private final long[] gpa;
    private final long[] len;
    private final long[] uva;
    private final long[] mapAddr;
    private final long[] mapLen;
    private final GuestMemory memory;
    private boolean closed;

    private MemoryTable(long[] gpa, long[] len, long[] uva, long[] mapAddr, long[] mapLen, GuestMemory memory) {
        this.gpa = gpa;
        this.len = len;
        this.uva = uva;
        this.mapAddr = mapAddr;
        this.mapLen = mapLen;
        this.memory = memory;
    }

    /**
     * Parses, checks and maps the table in {@code payload} ({@code size} bytes) with one fd per region.
     * The fds are the caller's: it closes them whatever happens (the mappings do not need them).
     */
    static MemoryTable map(MemorySegment payload, int size, int[] fds, int nfds) throws ProtocolException {
        if (size < VhostUser.MEM_REGIONS) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, "memory table of " + size + " bytes");
        }
        long n = payload.get(JAVA_INT_UNALIGNED, VhostUser.MEM_NREGIONS) & 0xffffffffL;
        if (n == 0 || n > VhostUser.MAX_FDS) {
            throw new ProtocolException(CloseCause.BAD_REGION_COUNT, n + " regions");
        }
        if (size != VhostUser.MEM_REGIONS + n * VhostUser.REGION_SIZE) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, n + " regions in " + size + " bytes");
        }
        if (nfds != n) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, n + " regions with " + nfds + " fds");
        }
        int k = (int) n;
        long[] gpa = new long[k];
        long[] len = new long[k];
        long[] uva = new long[k];
        long[] off = new long[k];
        for (int i = 0; i < k; i++) {
            long at = VhostUser.MEM_REGIONS + (long) i * VhostUser.REGION_SIZE;
            gpa[i] = payload.get(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_GPA);
            len[i] = payload.get(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_LEN);
            uva[i] = payload.get(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_UVA);
            off[i] = payload.get(JAVA_LONG_UNALIGNED, at + VhostUser.REGION_MMAP_OFFSET);
            if (len[i] == 0) {
                throw new ProtocolException(CloseCause.REGION_EMPTY, "region " + i);
            }
            // Unsigned ends must not wrap; the mapping length must stay a positive long.
            if (Long.compareUnsigned(gpa[i] + len[i], gpa[i]) < 0 || Long.compareUnsigned(uva[i] + len[i], uva[i]) < 0
                    || len[i] < 0 || off[i] < 0 || off[i] + len[i] < 0) {
                throw new ProtocolException(CloseCause.REGION_OVERFLOW, "region " + i + " gpa 0x" + Long.toHexString(gpa[i])
                        + " size 0x" + Long.toHexString(len[i]) + " offset 0x" + Long.toHexString(off[i]));
            }
        }
        for (int i = 0; i < k; i++) {
            for (int j = i + 1; j < k; j++) {
                if (overlaps(gpa[i], len[i], gpa[j], len[j]) || overlaps(uva[i], len[i], uva[j], len[j])) {
                    throw new ProtocolException(CloseCause.REGION_OVERLAP, "regions " + i + " and " + j);
                }
            }
        }
        for (int i = 0; i < k; i++) {
            try {
                long[] st = Libc.fstat(fds[i]);
                if ((st[0] & Libc.S_IFMT) == Libc.S_IFREG && st[1] < off[i] + len[i]) {
                    throw new ProtocolException(CloseCause.REGION_BEYOND_FILE, "region " + i + " ends at 0x"
                            + Long.toHexString(off[i] + len[i]) + ", file size 0x" + Long.toHexString(st[1]));
                }
                // A file shrunk under the mapping would SIGBUS the JVM on the next access: seal it against
                // shrinking where the front-end allows sealing (QEMU's memfd backend seals it itself).
                Libc.addSeals(fds[i], Libc.F_SEAL_SHRINK);
            } catch (NativeException e) {
                throw new ProtocolException(CloseCause.RESOURCE_ERROR, "region " + i + ": " + e.getMessage());
            }
        }
        long[] mapAddr = new long[k];
        long[] mapLen = new long[k];
        int mapped = 0;
        try {
            GuestMemory.Builder b = GuestMemory.builder();
            for (; mapped < k; mapped++) {
                int i = mapped;
                mapLen[i] = off[i] + len[i];
                mapAddr[i] = Libc.mmap(mapLen[i], Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fds[i], 0);
                b.wrap(gpa[i], MemorySegment.ofAddress(mapAddr[i] + off[i]).reinterpret(len[i]));
            }
            return new MemoryTable(gpa, len, uva, mapAddr, mapLen, b.build());
        } catch (NativeException e) {
            unmap(mapAddr, mapLen, mapped);
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, "mmap of region " + mapped + ": " + e.getMessage());
        } catch (RuntimeException e) {
            unmap(mapAddr, mapLen, mapped);
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, e.getMessage());
        }
    }

    private static boolean overlaps(long a, long alen, long b, long blen) {
        // Unsigned [a, a+alen) and [b, b+blen), neither wrapping (checked before).
        return Long.compareUnsigned(a, b + blen) < 0 && Long.compareUnsigned(b, a + alen) < 0;
    }

    private static void unmap(long[] addr, long[] len, int n) {
        for (int i = 0; i < n; i++) {
            try {
                Libc.munmap(addr[i], len[i]);
            } catch (NativeException ignored) {
                // EINVAL only for a range we never mapped.
            }
        }
    }

    public GuestMemory memory() {
        return memory;
    }

    public int regionCount() {
        return gpa.length;
    }

    /**
     * The guest-physical address of front-end virtual address {@code addr}, if {@code [addr, addr + size)}
     * lies inside one region; -1 otherwise.
     */
    public long uvaToGpa(long addr, long size) {
        for (int i = 0; i < uva.length; i++) {
            long delta = addr - uva[i];
            if (Long.compareUnsigned(addr, uva[i]) >= 0 && Long.compareUnsigned(delta, len[i]) < 0
                    && Long.compareUnsigned(size, len[i] - delta) <= 0) {
                return gpa[i] + delta;
            }
        }
        return -1;
    }

    /** Unmaps every region. The caller has stopped every ring using the memory first. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            unmap(mapAddr, mapLen, mapAddr.length);
        }
    }
}
