/**
 * A vhost-user backend (QEMU docs/interop/vhost-user.rst): {@link dev.loomvisor.vhost.user.VhostUserServer}
 * accepts front-ends (QEMU, DPDK's virtio-user) on a UNIX socket; each connection is a
 * {@link dev.loomvisor.vhost.user.VhostUserSession}, an emulated process owning one vhost-net per queue
 * pair, whose rings live in the front-end's shared memory and run on workers of the configured model. A
 * session is three parts: the message codec and its checks ({@code VhostUserCodec}), the vring state and
 * devices ({@code Vrings}) and the dispatch and life of the session itself. Sessions end with one typed
 * {@link dev.loomvisor.vhost.user.CloseReason} and an exact {@link dev.loomvisor.vhost.user.FrameAccount},
 * which the server folds into its running totals, keeping nothing else of a closed session.
 */
package dev.loomvisor.vhost.user;
