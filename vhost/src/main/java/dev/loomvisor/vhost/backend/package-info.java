/**
 * What vhost-net devices send to and receive from ({@link dev.loomvisor.vhost.backend.NetBackend}): a
 * learning switch with bounded per-port queues, a sink and a generator. All run on the calling workers'
 * threads and allocate nothing per frame.
 */
package dev.loomvisor.vhost.backend;
