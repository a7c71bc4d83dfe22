package dev.loomvisor.vhost.robust;

import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.work.VhostWork;

/** Vhost devices without a device-specific part: rings whose handlers are the test's callbacks. */
final class BareDevices {

    static final VhostDevice.Driver NO_DRIVER = new VhostDevice.Driver() {
        @Override
        public void featuresChanged(VhostVirtqueue vq, long features) {
        }

        @Override
        public void backendStarted(VhostVirtqueue vq, NetBackend backend) {
        }

        @Override
        public void backendStopped(VhostVirtqueue vq, NetBackend backend) {
        }
    };

    private BareDevices() {
    }

    /** A device with one ring per handler, no features, no kthread fallback. */
    static VhostDevice of(WorkerFactory f, VhostWork.Fn... handlers) {
        return new VhostDevice(handlers, f, null, 0, NO_DRIVER);
    }
}
