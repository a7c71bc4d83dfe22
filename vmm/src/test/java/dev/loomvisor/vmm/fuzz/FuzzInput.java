package dev.loomvisor.vmm.fuzz;

/**
 * A fuzz input read as a stream of little-endian fields. Reading past the end yields zeros, so every byte
 * string is a valid input (what a coverage-guided fuzzer needs: no input is rejected by the decoder, and a
 * mutation anywhere changes one decision).
 */
final class FuzzInput {

    private byte[] data = new byte[0];
    private int pos;

    FuzzInput reset(byte[] data) {
        this.data = data;
        this.pos = 0;
        return this;
    }

    boolean exhausted() {
        return pos >= data.length;
    }

    int u8() {
        return pos < data.length ? data[pos++] & 0xff : 0;
    }

    int u16() {
        return u8() | u8() << 8;
    }

    long u32() {
        return (u16() | (long) u16() << 16) & 0xffffffffL;
    }

    long u64() {
        return u32() | u32() << 32;
    }
}
