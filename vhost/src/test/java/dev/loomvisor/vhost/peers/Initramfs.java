package dev.loomvisor.vhost.peers;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An uncompressed initramfs: a cpio archive in the "newc" format (the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst), written here in a few lines rather than by
 * the {@code cpio} tool so that device nodes ({@code /dev/console}) need no root and the archive needs no
 * staging directory.
 */
public final class Initramfs {

    private static final int S_IFDIR = 0040000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFCHR = 0020000;

    private record Entry(String name, int mode, byte[] data, int rdevMajor, int rdevMinor) {
    }

    private final List<Entry> entries = new ArrayList<>();

    public Initramfs dir(String name) {
        entries.add(new Entry(name, S_IFDIR | 0755, new byte[0], 0, 0));
        return this;
    }

    public Initramfs file(String name, int permissions, byte[] data) {
        entries.add(new Entry(name, S_IFREG | permissions, data, 0, 0));
        return this;
    }

    public Initramfs file(String name, int permissions, String text) {
        return file(name, permissions, text.getBytes(StandardCharsets.UTF_8));
    }

    public Initramfs copy(String name, int permissions, Path from) throws IOException {
        return file(name, permissions, Files.readAllBytes(from));
    }

    public Initramfs charDevice(String name, int permissions, int major, int minor) {
        entries.add(new Entry(name, S_IFCHR | permissions, new byte[0], major, minor));
        return this;
    }

    public void write(Path to) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(to))) {
            int ino = 1;
            for (Entry e : entries) {
                entry(out, ino++, e.name, e.mode, e.data, e.rdevMajor, e.rdevMinor);
            }
            entry(out, 0, "TRAILER!!!", 0, new byte[0], 0, 0);
        }
    }

    /** One newc record: a 110-byte ASCII header, the name NUL-terminated, the data; each padded to 4 bytes. */
    private static void entry(OutputStream out, int ino, String name, int mode, byte[] data, int rdevMajor,
                              int rdevMinor) throws IOException {
        byte[] n = (name + "\0").getBytes(StandardCharsets.UTF_8);
        String header = "070701" + hex(ino) + hex(mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length)
                + hex(0) + hex(0) + hex(rdevMajor) + hex(rdevMinor) + hex(n.length) + hex(0);
        out.write(header.getBytes(StandardCharsets.US_ASCII));
        out.write(n);
        pad(out, 110 + n.length);
        out.write(data);
        pad(out, data.length);
    }

    private static String hex(int v) {
        return String.format("%08X", v);
    }

    private static void pad(OutputStream out, int length) throws IOException {
        for (int i = length; i % 4 != 0; i++) {
            out.write(0);
        }
    }
}
