package dev.loomvisor.vhost.peers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * A Linux guest under QEMU (TCG) whose only NIC is a virtio-net-pci device on a vhost-user socket: Debian's
 * stock kernel, and a busybox initramfs whose /init loads the virtio modules, brings eth0 up on
 * {@value #GUEST_IP}/24, pings {@value #PEER_IP} {@value #PINGS} times, prints one marker line with the
 * result and powers off. The console is the test's only window into the guest.
 *
 * <p>The device options follow the interop notes of docs/vhost-user.md: the guest's RAM is a shared
 * memfd (the backend maps it), {@code vectors=0} (QEMU 7.2's vhost-user start crashes with MSI-X here),
 * {@code romfile=} (no 9 s option-ROM delay) and {@code -nic none} (no other NIC).
 */
public final class QemuGuest implements AutoCloseable {

    public static final String PACKAGES = "qemu-system-x86 linux-image-amd64 busybox-static";
    public static final String GUEST_IP = "198.51.100.2";
    public static final String PEER_IP = "198.51.100.1";
    public static final int PINGS = 20;
    /** The MAC QEMU gives the first NIC when none is set. */
    public static final long GUEST_MAC = 0x5254_0012_3456L;
    /** virtio_net and virtio_pci are modules in Debian's kernel; modules.dep names what they need. */
    private static final List<String> MODULES = List.of("virtio_pci", "virtio_net");
    private static final String MARKER = "LOOMVISOR-PING";
    private static final Pattern RESULT = Pattern.compile(
            MARKER + " (\\d+) packets transmitted, (\\d+) packets received");

    /** The guest's ping summary. */
    public record PingResult(int transmitted, int received) {
    }

    /** An installed kernel image and its modules (not the host's running kernel: the package's). */
    public record GuestKernel(String version, Path image, Path modules) {
    }

    private final Process process;
    private final ProcessOutput console;

    private QemuGuest(Process process) {
        this.process = process;
        this.console = new ProcessOutput(process.getInputStream(), "qemu");
    }

    /**
     * Boots the guest against the vhost-user backend listening on {@code socket} (QEMU connects as the
     * frontend at once, so the backend must already listen). {@code dir} holds the initramfs.
     */
    public static QemuGuest boot(Path socket, Path dir) throws IOException {
        return boot(socket, dir, "");
    }

    /** As {@link #boot(Path, Path)}, with extra virtio-net-pci properties, e.g. {@code ,packed=on}. */
    public static QemuGuest boot(Path socket, Path dir, String deviceProps) throws IOException {
        Path qemu = Peers.require("qemu-system-x86_64", PACKAGES);
        GuestKernel kernel = installedKernel();
        Path initrd = dir.resolve("initramfs.cpio");
        buildInitramfs(kernel, initrd);
        List<String> cmd = List.of(qemu.toString(), "-accel", "tcg", "-m", "256",
                "-kernel", kernel.image().toString(), "-initrd", initrd.toString(),
                "-append", "console=ttyS0 panic=-1 loglevel=4",
                "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-numa", "node,memdev=mem",
                "-chardev", "socket,id=c0,path=" + socket, "-netdev", "vhost-user,id=n0,chardev=c0",
                "-device", "virtio-net-pci,netdev=n0,romfile=,vectors=0" + deviceProps,
                "-nic", "none", "-nographic", "-no-reboot");
        return new QemuGuest(new ProcessBuilder(cmd).redirectErrorStream(true).start());
    }

    /** The newest kernel that has both an image in /boot and its modules.dep; fails when there is none. */
    public static GuestKernel installedKernel() throws IOException {
        List<GuestKernel> found = new ArrayList<>();
        try (var boot = Files.list(Path.of("/boot"))) {
            for (Path image : boot.toList()) {
                String name = image.getFileName().toString();
                if (!name.startsWith("vmlinuz-")) {
                    continue;
                }
                String version = name.substring("vmlinuz-".length());
                Path modules = Path.of("/lib/modules", version);
                if (Files.isReadable(image) && Files.isRegularFile(modules.resolve("modules.dep"))) {
                    found.add(new GuestKernel(version, image, modules));
                }
            }
        } catch (java.nio.file.NoSuchFileException e) {
            // No /boot at all: reported below.
        }
        if (found.isEmpty()) {
            Peers.missing("a kernel image /boot/vmlinuz-* with its /lib/modules", "linux-image-amd64");
        }
        found.sort(Comparator.comparing(GuestKernel::version, QemuGuest::compareVersions));
        return found.getLast();
    }

    /** Compares dotted/dashed versions numerically where both parts are numbers (6.1.0-56 < 6.1.0-100). */
    static int compareVersions(String a, String b) {
        String[] x = a.split("[.-]");
        String[] y = b.split("[.-]");
        for (int i = 0; i < Math.min(x.length, y.length); i++) {
            int c = x[i].matches("\\d+") && y[i].matches("\\d+")
                    ? Long.compare(Long.parseLong(x[i]), Long.parseLong(y[i])) : x[i].compareTo(y[i]);
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(x.length, y.length);
    }

    /**
     * The module files to insmod, dependencies first, for {@code names} (from modules.dep: a line
     * {@code path: dep dep ...}). Built-in modules are not in modules.dep and need nothing.
     */
    static List<Path> loadOrder(Path modulesDir, List<String> names) throws IOException {
        Map<String, String> pathByName = new HashMap<>();
        Map<String, List<String>> deps = new HashMap<>();
        for (String line : Files.readAllLines(modulesDir.resolve("modules.dep"))) {
            int colon = line.indexOf(':');
            if (colon < 0) {
                continue;
            }
            String path = line.substring(0, colon).trim();
            String name = moduleName(path);
            pathByName.put(name, path);
            List<String> d = new ArrayList<>();
            for (String dep : line.substring(colon + 1).trim().split("\\s+")) {
                if (!dep.isEmpty()) {
                    d.add(moduleName(dep));
                }
            }
            deps.put(name, d);
        }
        Set<String> ordered = new LinkedHashSet<>();
        for (String n : names) {
            visit(n, pathByName, deps, ordered, new LinkedHashSet<>());
        }
        List<Path> files = new ArrayList<>();
        for (String n : ordered) {
            files.add(modulesDir.resolve(pathByName.get(n)));
        }
        return files;
    }

    private static void visit(String name, Map<String, String> pathByName, Map<String, List<String>> deps,
                              Set<String> ordered, Set<String> onPath) {
        if (ordered.contains(name) || !pathByName.containsKey(name)) {
            return; // loaded already, or built in
        }
        if (!onPath.add(name)) {
            throw new IllegalStateException("modules.dep has a cycle through " + name);
        }
        for (String d : deps.get(name)) {
            visit(d, pathByName, deps, ordered, onPath);
        }
        onPath.remove(name);
        ordered.add(name);
    }

    private static String moduleName(String path) {
        String file = path.substring(path.lastIndexOf('/') + 1);
        return file.substring(0, file.indexOf(".ko")).replace('-', '_');
    }

    /** busybox as /bin/busybox, the modules flat in /lib/modules, and /init. */
    static void buildInitramfs(GuestKernel kernel, Path to) throws IOException {
        Path busybox = Peers.require("busybox", "busybox-static");
        Initramfs fs = new Initramfs().dir("bin").dir("dev").dir("proc").dir("sys").dir("lib").dir("lib/modules")
                .charDevice("dev/console", 0600, 5, 1)
                .copy("bin/busybox", 0755, busybox);
        StringBuilder insmods = new StringBuilder();
        for (Path ko : loadOrder(kernel.modules(), MODULES)) {
            String file = ko.getFileName().toString();
            if (!file.endsWith(".ko")) {
                throw new IllegalStateException(ko + ": compressed modules are not supported by this initramfs");
            }
            fs.copy("lib/modules/" + file, 0644, ko);
            insmods.append("insmod /lib/modules/").append(file)
                    .append(" || echo \"LOOMVISOR-INSMOD-FAILED ").append(file).append("\"\n");
        }
        fs.file("init", 0755, """
                #!/bin/busybox sh
                /bin/busybox --install -s /bin
                mount -t proc proc /proc
                mount -t sysfs sysfs /sys
                mount -t devtmpfs devtmpfs /dev
                %s
                i=0
                while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
                [ -e /sys/class/net/eth0 ] || echo "LOOMVISOR-NO-ETH0"
                ip link set lo up
                ip addr add %s/24 dev eth0
                ip link set eth0 up
                ping -c %d -i 0.2 -W 3 %s > /ping.out 2>&1
                cat /ping.out
                echo "%s $(grep 'packets transmitted' /ping.out)"
                poweroff -f
                """.formatted(insmods, GUEST_IP, PINGS, PEER_IP, MARKER));
        fs.write(to);
    }

    /**
     * Waits (bounded) for the guest's marker line.
     *
     * @return the ping summary, or null when the guest printed none in time (see {@link #console})
     */
    public PingResult awaitPing(Duration timeout) throws InterruptedException {
        ProcessOutput.MatchResultAt m = console.await(0, RESULT, timeout);
        if (m == null) {
            return null;
        }
        return new PingResult(Integer.parseInt(m.match().group(1)), Integer.parseInt(m.match().group(2)));
    }

    /** Waits (bounded) for QEMU to exit after the guest powered off; true if it did. */
    public boolean awaitExit(Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The serial console so far. */
    public String console() {
        return console.text();
    }

    /** Ends QEMU (SIGTERM, then SIGKILL), each with a bounded wait. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
