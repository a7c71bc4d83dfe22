package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.virtio.SplitRing.*;

import java.io.ByteArrayOutputStream;

/**
 * Writes inputs in {@link SplitRingTarget}'s format, so that the corpus can start from the rings the unit
 * tests build (a chain of N, direct then indirect, a wrap at 65535, RX and TX batches) instead of from noise.
 * Fields are written in decode order; {@link #desc} uses the plain encodings (data offset, small length).
 */
final class InputBuilder {

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final int n;
    private int descs;
    private int entries;

    /**
     * The header: queue size index into {@link SplitRingTarget#SIZES}, features, start index, used.idx in the
     * ring, and avail.idx as {@code start + ahead}.
     */
    InputBuilder(int sizeIndex, boolean eventIdx, boolean indirect, boolean tx, int start, int ahead) {
        n = SplitRingTarget.SIZES[sizeIndex];
        u8(sizeIndex | (eventIdx ? SplitRingTarget.CFG_EVENT_IDX : 0) | (indirect ? SplitRingTarget.CFG_INDIRECT : 0)
                | (tx ? SplitRingTarget.CFG_TX : 0));
        u16(start);
        u16(start); // used.idx as a ring that has been running since `start`
        u8(0);
        u16(ahead);
        u16(0); // avail.flags
        u16(start); // used_event
    }

    int size() {
        return n;
    }

    InputBuilder u8(int v) {
        out.write(v);
        return this;
    }

    InputBuilder u16(int v) {
        out.write(v);
        out.write(v >> 8);
        return this;
    }

    /** A descriptor whose buffer is {@code dataOffset} bytes into the data area, {@code len} < 2048. */
    InputBuilder desc(int dataOffset, int len, int flags, int next) {
        u8(0); // mode: data address, small length, explicit flags
        u16(dataOffset);
        u16(len);
        u8(flags & 7);
        u8(next);
        descs++;
        return this;
    }

    /** A descriptor of 2^31 - {@code below} bytes at the start of the 2 GiB region C. */
    InputBuilder bigDesc(int below, int flags, int next) {
        u8(4 | 7 << 3); // edge address, near-2^31 length, explicit flags
        u8(6);
        u8(0);
        u8(below);
        u8(flags & 7);
        u8(next);
        descs++;
        return this;
    }

    /** A descriptor pointing at indirect table 0 or 1 with {@code entries} entries. */
    InputBuilder indirectDesc(int table, int entries) {
        u8(3 | 6 << 3); // table address, length 16 * entries
        u8(table);
        u8(entries);
        u8(DESC_F_INDIRECT);
        u8(0);
        descs++;
        return this;
    }

    /** Fills the rest of the table with plain one-descriptor chains. */
    InputBuilder restOfTable() {
        while (descs < n) {
            desc(descs * 64, 64, 0, 0);
        }
        return this;
    }

    InputBuilder avail(int head) {
        u8(head);
        entries++;
        return this;
    }

    /** An avail entry written raw (may be >= N). */
    InputBuilder availRaw(int head) {
        u8(0xf0);
        u16(head);
        entries++;
        return this;
    }

    InputBuilder restOfAvail() {
        while (entries < n) {
            avail(entries);
        }
        return this;
    }

    /** Starts an indirect table of {@code count} entries (then write them with {@link #desc}). */
    InputBuilder table(int count) {
        u8(count);
        return this;
    }

    /** A pop whose chain is read, written and returned used at once. */
    InputBuilder popAndUse() {
        return u8(0).u8(0x05).u8(0); // read 40, write 64, addUsed now
    }

    /** A pop whose chain is kept for later. */
    InputBuilder popAndHold() {
        return u8(0).u8(0x20).u8(0);
    }

    InputBuilder op(int op) {
        return u8(op);
    }

    byte[] bytes() {
        return out.toByteArray();
    }
}
