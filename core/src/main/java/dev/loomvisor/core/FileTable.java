package dev.loomvisor.core;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A file descriptor table (struct files_struct): numbers to open files. CLONE_FILES shares it, otherwise the
 * child gets a copy; a task made with {@code no_files} has none at all (reference section 1, step 7). When
 * its last user goes away every file still open is closed, the way an exiting VMM closes its vhost fds.
 */
public final class FileTable {

    private final ReentrantLock lock = new ReentrantLock();
    private final TreeMap<Integer, AutoCloseable> files = new TreeMap<>();
    private final AtomicInteger users = new AtomicInteger();
    /**
     * files_struct.next_fd: no descriptor below it is free, so the search for the lowest free one starts
     * there (alloc_fd) instead of walking every open file: a VMM with 10,000 VMs holds tens of thousands.
     */
    private int nextFd;

    /** Installs a file at the lowest free descriptor and returns it. */
    public int install(AutoCloseable file) {
        lock.lock();
        try {
            int fd = nextFd;
            while (files.containsKey(fd)) {
                fd++;
            }
            files.put(fd, file);
            nextFd = fd + 1;
            return fd;
        } finally {
            lock.unlock();
        }
    }

    /** The file at {@code fd}. */
    public AutoCloseable get(int fd) throws ErrnoException {
        lock.lock();
        try {
            AutoCloseable f = files.get(fd);
            if (f == null) {
                throw new ErrnoException(Errno.EBADF, "fd " + fd);
            }
            return f;
        } finally {
            lock.unlock();
        }
    }

    /** Removes and closes the file at {@code fd}. */
    public void close(int fd) throws ErrnoException {
        AutoCloseable f;
        lock.lock();
        try {
            f = files.remove(fd);
            if (f != null && fd < nextFd) {
                nextFd = fd; // __put_unused_fd
            }
        } finally {
            lock.unlock();
        }
        if (f == null) {
            throw new ErrnoException(Errno.EBADF, "fd " + fd);
        }
        closeQuietly(f);
    }

    public int size() {
        lock.lock();
        try {
            return files.size();
        } finally {
            lock.unlock();
        }
    }

    /** The tasks sharing this table. */
    public int users() {
        return users.get();
    }

    /**
     * dup_fd for a child without CLONE_FILES. The emulation does not reference-count open files, so a copy
     * starts empty rather than holding files that both tables would close.
     */
    FileTable copy() {
        return new FileTable();
    }

    void get() {
        users.incrementAndGet();
    }

    /** put_files_struct: the last user closes every open file (close_files). */
    void put() {
        if (users.decrementAndGet() == 0) {
            Map<Integer, AutoCloseable> open;
            lock.lock();
            try {
                open = new TreeMap<>(files);
                files.clear();
                nextFd = 0;
            } finally {
                lock.unlock();
            }
            open.values().forEach(FileTable::closeQuietly);
        }
    }

    private static void closeQuietly(AutoCloseable f) {
        try {
            f.close();
        } catch (Exception e) {
            // close(2) on exit has nobody to report to; the file's own state records its failure.
        }
    }
}
