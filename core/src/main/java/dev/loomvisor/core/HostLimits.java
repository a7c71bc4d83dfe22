package dev.loomvisor.core;

import dev.loomvisor.core.HostLimitException.Reason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The limits of the real JVM process, for running scenarios under the host's own numbers: RLIMIT_NPROC from
 * {@code /proc/self/limits} ("Max processes") and the effective {@code pids.max} of the process's cgroup,
 * from the cgroup v1 {@code pids} hierarchy or the v2 unified one (hybrid hosts: v1 pids first, as that is
 * the controller in charge there). Parsers take text so they can be checked on samples.
 */
public final class HostLimits {

    private HostLimits() {
    }

    /** RLIMIT_NPROC soft limit of this process ({@link Rlimits#INFINITY} for "unlimited"). */
    public static long readNproc() throws HostLimitException {
        Path p = Path.of("/proc/self/limits");
        return parseNproc(read(p), p);
    }

    /** Limits of this process as {@link Rlimits}. */
    public static Rlimits rlimits() throws HostLimitException {
        return Rlimits.nproc(readNproc());
    }

    /** The soft "Max processes" value of /proc/[pid]/limits text. */
    public static long parseNproc(String limits, Path source) throws HostLimitException {
        for (String line : limits.split("\n")) {
            if (line.startsWith("Max processes")) {
                String[] f = line.substring("Max processes".length()).trim().split("\\s+");
                if (f.length < 2) {
                    throw new HostLimitException(Reason.MALFORMED, source, "short line '" + line + "'", null);
                }
                return parseLimit(f[0], "unlimited", source);
            }
        }
        throw new HostLimitException(Reason.MALFORMED, source, "no 'Max processes' line", null);
    }

    /** The value of a pids.max file: "max" or a number. */
    public static long parsePidsMax(String text, Path source) throws HostLimitException {
        return parseLimit(text.trim(), "max", source);
    }

    private static long parseLimit(String v, String unlimited, Path source) throws HostLimitException {
        if (v.equals(unlimited)) {
            return Rlimits.INFINITY;
        }
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new NumberFormatException("negative");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new HostLimitException(Reason.MALFORMED, source, "bad limit '" + v + "'", e);
        }
    }

    /** Where the pids controller of a process is: the hierarchy's mount, and the cgroup's directory in it. */
    public record PidsCgroup(Path mountPoint, String mountRoot, String cgroupPath, boolean v2) {

        /** The cgroup's directory: the mount point plus the path below the mount's root. */
        public Path directory() {
            String rel = cgroupPath;
            if (!mountRoot.equals("/") && (rel.equals(mountRoot) || rel.startsWith(mountRoot + "/"))) {
                rel = rel.substring(mountRoot.length());
            }
            rel = rel.replaceAll("^/+", "");
            return rel.isEmpty() ? mountPoint : mountPoint.resolve(rel);
        }
    }

    /**
     * Finds the pids cgroup from /proc/self/cgroup text ("id:controllers:path" lines; v2 is "0::path") and
     * /proc/self/mountinfo text (fields ... mount-root mount-point ... " - " fstype source super-options).
     */
    public static PidsCgroup locatePids(String procCgroup, String mountinfo) throws HostLimitException {
        String v1Path = null;
        String v2Path = null;
        for (String line : procCgroup.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split(":", 3);
            if (f.length != 3) {
                throw new HostLimitException(Reason.MALFORMED, Path.of("/proc/self/cgroup"), "line '" + line + "'", null);
            }
            if (f[0].equals("0") && f[1].isEmpty()) {
                v2Path = f[2];
            } else {
                for (String c : f[1].split(",")) {
                    if (c.equals("pids")) {
                        v1Path = f[2];
                    }
                }
            }
        }
        String[] v1Mount = null;
        String[] v2Mount = null;
        for (String line : mountinfo.split("\n")) {
            int dash = line.indexOf(" - ");
            if (dash < 0) {
                continue;
            }
            String[] pre = line.substring(0, dash).split(" ");
            String[] post = line.substring(dash + 3).split(" ");
            if (pre.length < 5 || post.length < 3) {
                continue;
            }
            String root = pre[3];
            String mountPoint = pre[4];
            if (post[0].equals("cgroup2") && v2Mount == null) {
                v2Mount = new String[] {root, mountPoint};
            } else if (post[0].equals("cgroup") && v1Mount == null) {
                for (String o : post[2].split(",")) {
                    if (o.equals("pids")) {
                        v1Mount = new String[] {root, mountPoint};
                    }
                }
            }
        }
        if (v1Path != null && v1Mount != null) {
            return new PidsCgroup(Path.of(unescape(v1Mount[1])), unescape(v1Mount[0]), v1Path, false);
        }
        if (v2Path != null && v2Mount != null) {
            return new PidsCgroup(Path.of(unescape(v2Mount[1])), unescape(v2Mount[0]), v2Path, true);
        }
        throw new HostLimitException(Reason.NO_PIDS_CONTROLLER, Path.of("/proc/self/mountinfo"),
                "no cgroup v1 'pids' or cgroup2 mount for this process", null);
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    private static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }

    /**
     * The effective pids.max of this process: the smallest pids.max from its cgroup up to the hierarchy's
     * root (the root has no pids.max file: unlimited), {@link Rlimits#INFINITY} if none limits.
     */
    public static long readPidsMax() throws HostLimitException {
        PidsCgroup cg = locatePids(read(Path.of("/proc/self/cgroup")), read(Path.of("/proc/self/mountinfo")));
        return readPidsMax(cg);
    }

    /** The effective pids.max below {@code cg}'s directory, walking up to its mount point. */
    public static long readPidsMax(PidsCgroup cg) throws HostLimitException {
        Path dir = cg.directory();
        if (!Files.isDirectory(dir)) {
            throw new HostLimitException(Reason.UNREADABLE, dir, "cgroup directory missing", null);
        }
        long min = Rlimits.INFINITY;
        // The root has no pids.max, nor has a v2 child whose parent does not enable the controller: no limit
        // at that level.
        for (Path d = dir; d != null && d.startsWith(cg.mountPoint()); d = d.getParent()) {
            Path f = d.resolve("pids.max");
            if (Files.exists(f)) {
                min = Math.min(min, parsePidsMax(read(f), f));
            }
        }
        return min;
    }

    private static String read(Path p) throws HostLimitException {
        try {
            return Files.readString(p);
        } catch (NoSuchFileException e) {
            throw new HostLimitException(Reason.UNREADABLE, p, "no such file", e);
        } catch (IOException | SecurityException e) {
            throw new HostLimitException(Reason.UNREADABLE, p, e.toString(), e);
        }
    }
}
