/**
 * The emulated kernel, following the Linux semantics written down in docs/kernel.md. {@link dev.loomvisor.core.Kernel}
 * holds the process table, init and kthreadd, the root {@link dev.loomvisor.core.Cgroup}, {@link dev.loomvisor.core.UCounts}
 * and threads-max; {@link dev.loomvisor.core.Kernel#copyProcess} is the only way a {@link dev.loomvisor.core.Task}
 * is born (kernel/fork.c's order of checks); the 6.10 user worker ({@code vhost_task}) lives with the worker SPI in
 * {@code core.worker}, which depends on this package and never the reverse. Failures are
 * {@link dev.loomvisor.core.ErrnoException}s carrying an {@link dev.loomvisor.core.Errno}.
 */
package dev.loomvisor.core;
