package dev.loomvisor.core;

import java.nio.file.Path;

/** A limit of the real process could not be read: why, and which file. */
public final class HostLimitException extends Exception {

    /** What went wrong. */
    public enum Reason {
        /** The file is missing or unreadable (not Linux, /proc not mounted, permissions). */
        UNREADABLE,
        /** The file was read but did not have the expected format. */
        MALFORMED,
        /** Neither a cgroup v1 pids hierarchy nor cgroup v2 is mounted for this process. */
        NO_PIDS_CONTROLLER
    }

    private final Reason reason;
    private final Path path;

    public HostLimitException(Reason reason, Path path, String detail, Throwable cause) {
        super(reason + (path == null ? "" : " " + path) + ": " + detail, cause);
        this.reason = reason;
        this.path = path;
    }

    public Reason reason() {
        return reason;
    }

    /** The file concerned, or null. */
    public Path path() {
        return path;
    }
}
