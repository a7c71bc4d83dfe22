/**
 * The host calls the vhost-user backend needs, through the FFM API (java.lang.foreign) on x86_64 Linux:
 * AF_UNIX sockets with SCM_RIGHTS fd passing ({@link dev.loomvisor.vhost.sys.UnixSocket}), eventfds
 * ({@link dev.loomvisor.vhost.sys.EventFd}), the epoll thread that turns kicks into work
 * ({@link dev.loomvisor.vhost.sys.EpollLoop}), mmap and memfd ({@link dev.loomvisor.vhost.sys.Libc}).
 * Struct layouts are written down as offsets in {@link dev.loomvisor.vhost.sys.Libc}.
 */
package dev.loomvisor.vhost.sys;
