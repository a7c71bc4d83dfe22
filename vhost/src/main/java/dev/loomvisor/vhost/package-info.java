/**
 * The vhost layer (drivers/vhost/vhost.c): {@link dev.loomvisor.vhost.VhostDevice} with the kernel's
 * control calls and errno results, its rings ({@link dev.loomvisor.vhost.VhostVirtqueue}) and their
 * counters ({@link dev.loomvisor.vhost.RingCounter}). Workers come from core's worker factory; the work
 * queue lives in {@code work}, vhost-net in {@code net}, the backends in {@code backend}.
 */
package dev.loomvisor.vhost;
