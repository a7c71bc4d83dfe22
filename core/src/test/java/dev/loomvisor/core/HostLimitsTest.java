package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.HostLimitException.Reason;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Limits from the real process: the parsers on sample text, the cgroup walk on a fake tree. */
class HostLimitsTest {

    private static final Path SRC = Path.of("sample");

    private static final String LIMITS = """
            Limit                     Soft Limit           Hard Limit           Units
            Max cpu time              unlimited            unlimited            seconds
            Max stack size            8388608              unlimited            bytes
            Max processes             96365                128000               processes
            Max open files            20000                20000                files
            """;

    private static final String HYBRID_CGROUP = """
            9:name=systemd:/
            8:pids:/machine/vm1
            4:memory:/process_api/f24
            0::/
            """;

    private static final String HYBRID_MOUNTINFO = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """;

    private static final String V2_CGROUP = "0::/user.slice/vm.scope\n";
    private static final String V2_MOUNTINFO =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    @Test
    void parsesTheSoftMaxProcesses() throws Exception {
        assertEquals(96365, HostLimits.parseNproc(LIMITS, SRC));
        assertEquals(Rlimits.INFINITY, HostLimits.parseNproc(
                "Max processes             unlimited            unlimited            processes\n", SRC));
    }

    @Test
    void malformedLimitsAreATypedError() {
        var missing = assertThrows(HostLimitException.class, () -> HostLimits.parseNproc("Max open files 1 1 files\n", SRC));
        assertEquals(Reason.MALFORMED, missing.reason());
        var bad = assertThrows(HostLimitException.class,
                () -> HostLimits.parseNproc("Max processes             lots       lots    processes\n", SRC));
        assertEquals(Reason.MALFORMED, bad.reason());
        assertEquals(SRC, bad.path());
    }

    @Test
    void parsesPidsMax() throws Exception {
        assertEquals(Rlimits.INFINITY, HostLimits.parsePidsMax("max\n", SRC));
        assertEquals(512, HostLimits.parsePidsMax("512\n", SRC));
        assertEquals(Reason.MALFORMED,
                assertThrows(HostLimitException.class, () -> HostLimits.parsePidsMax("-1", SRC)).reason());
    }

    @Test
    void locatesV1PidsOnAHybridHostAndV2OnAUnifiedOne() throws Exception {
        var v1 = HostLimits.locatePids(HYBRID_CGROUP, HYBRID_MOUNTINFO);
        assertFalse(v1.v2());
        assertEquals(Path.of("/sys/fs/cgroup/pids/machine/vm1"), v1.directory());
        var v2 = HostLimits.locatePids(V2_CGROUP, V2_MOUNTINFO);
        assertTrue(v2.v2());
        assertEquals(Path.of("/sys/fs/cgroup/user.slice/vm.scope"), v2.directory());
        // A container whose cgroup namespace root is a sub-tree mounted at the mount point.
        var ns = HostLimits.locatePids("0::/docker/abc/app\n",
                "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assertEquals(Path.of("/sys/fs/cgroup/app"), ns.directory());
    }

    @Test
    void noPidsControllerIsATypedError() {
        var e = assertThrows(HostLimitException.class, () -> HostLimits.locatePids("4:memory:/x\n",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"));
        assertEquals(Reason.NO_PIDS_CONTROLLER, e.reason());
        assertEquals(Reason.MALFORMED,
                assertThrows(HostLimitException.class, () -> HostLimits.locatePids("garbage\n", V2_MOUNTINFO)).reason());
    }

    @Test
    void theEffectivePidsMaxIsTheSmallestUpTheTree(@TempDir Path root) throws Exception {
        Path mount = root.resolve("pids");
        Path vm = mount.resolve("machine/vm1");
        Files.createDirectories(vm);
        Files.writeString(mount.resolve("machine/pids.max"), "64\n");
        Files.writeString(vm.resolve("pids.max"), "max\n");
        var cg = new HostLimits.PidsCgroup(mount, "/", "/machine/vm1", false);
        assertEquals(64, HostLimits.readPidsMax(cg));
        Files.writeString(vm.resolve("pids.max"), "8\n");
        assertEquals(8, HostLimits.readPidsMax(cg));
        var top = new HostLimits.PidsCgroup(mount, "/", "/", false);
        assertEquals(Rlimits.INFINITY, HostLimits.readPidsMax(top), "the root has no pids.max");
        var gone = new HostLimits.PidsCgroup(mount, "/", "/elsewhere", false);
        assertEquals(Reason.UNREADABLE, assertThrows(HostLimitException.class, () -> HostLimits.readPidsMax(gone)).reason());
        Files.writeString(vm.resolve("pids.max"), "junk\n");
        assertEquals(Reason.MALFORMED, assertThrows(HostLimitException.class, () -> HostLimits.readPidsMax(cg)).reason());
    }

    /** On the machine itself: either a value or a typed reason, never an untyped failure. */
    @Test
    void readsThisProcessOrSaysWhyNot() {
        try {
            assertTrue(HostLimits.readNproc() > 0);
        } catch (HostLimitException e) {
            assertEquals(Reason.UNREADABLE, e.reason());
        }
        try {
            assertTrue(HostLimits.readPidsMax() > 0);
        } catch (HostLimitException e) {
            assertTrue(e.reason() == Reason.UNREADABLE || e.reason() == Reason.NO_PIDS_CONTROLLER);
        }
    }
}
