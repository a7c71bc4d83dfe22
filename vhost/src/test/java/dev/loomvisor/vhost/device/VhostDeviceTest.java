package dev.loomvisor.vhost.device;

import static dev.loomvisor.vhost.testing.Errnos.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Errno;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.fixture.Guest;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.NetFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The control calls of user-workers.md section 5 and their errors, one rule per test. */
class VhostDeviceTest {

    private final Kernel kernel = new Kernel();
    private final Process vmm = Owners.vmm(kernel);
    private final Task owner = vmm.mainTask();
    private final WorkerFactory userWorker = factory(WorkerModel.USER_WORKER);
    private final WorkerFactory kthread = factory(WorkerModel.KTHREAD);
    private final VhostNet net = VhostNet.open(owner, userWorker);
    private final VhostDevice dev = net.device();

    private WorkerFactory factory(WorkerModel m) {
        try {
            return m.factory(kernel, 1);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @AfterEach
    void tearDown() {
        net.close();
        vmm.exit();
        userWorker.close();
        kthread.close();
    }

    @Test
    void setOwnerTwiceIsEbusy() throws Exception {
        dev.setOwner(owner);
        assertErrno(Errno.EBUSY, () -> dev.setOwner(owner));
        Process other = Owners.vmm(kernel, "other", 1001, Long.MAX_VALUE);
        try {
            assertErrno(Errno.EBUSY, () -> dev.setOwner(other.mainTask()));
        } finally {
            other.exit();
        }
    }

    @Test
    void anotherAddressSpaceIsEpermAnyThreadOfTheOwnerIsAllowed() throws Exception {
        dev.setOwner(owner);
        Process child = Owners.vmm(kernel, "child", 1000, Long.MAX_VALUE);
        try {
            assertErrno(Errno.EPERM, () -> dev.setVringNum(child.mainTask(), 0, 256));
            assertErrno(Errno.EPERM, () -> dev.newWorker(child.mainTask()));
            assertErrno(Errno.EPERM, () -> net.setBackend(child.mainTask(), 0, new SinkBackend()));
        } finally {
            child.exit();
        }
        Task sibling = Owners.thread(vmm);
        dev.setVringNum(sibling, 0, 256); // same mm: allowed
        assertEquals(1, dev.newWorker(sibling));
    }

    @Test
    void callsOnAnUnownedDevice() {
        assertErrno(Errno.EPERM, () -> dev.setVringNum(owner, 0, 256));
        assertErrno(Errno.EINVAL, () -> dev.newWorker(owner));
        assertErrno(Errno.EINVAL, () -> dev.getVringWorker(owner, 0));
        assertErrno(Errno.EINVAL, () -> dev.freeWorker(owner, 0));
    }

    @Test
    void aBadRingIndexIsEnobufs() throws Exception {
        dev.setOwner(owner);
        assertErrno(Errno.ENOBUFS, () -> dev.setVringNum(owner, 2, 256));
        assertErrno(Errno.ENOBUFS, () -> dev.getVringWorker(owner, 2));
        assertErrno(Errno.ENOBUFS, () -> dev.attachVringWorker(owner, -1, 0));
        assertErrno(Errno.ENOBUFS, () -> net.setBackend(owner, 2, new SinkBackend()));
    }

    @Test
    void ringSizeMustBeAPowerOfTwoUpTo32768() throws Exception {
        dev.setOwner(owner);
        for (int bad : new int[] {0, -1, 3, 65535, 65536}) {
            assertErrno(Errno.EINVAL, () -> dev.setVringNum(owner, 0, bad));
        }
        dev.setVringNum(owner, 0, 32768);
        assertErrno(Errno.EINVAL, () -> dev.setVringAddr(owner, 0, 0x1008, 0x2000, 0x3000));
        assertErrno(Errno.EINVAL, () -> dev.setVringBase(owner, 0, 0x10000));
    }

    @Test
    void unsupportedFeaturesAreEopnotsupp() throws Exception {
        dev.setOwner(owner);
        assertErrno(Errno.EOPNOTSUPP, () -> dev.setFeatures(owner, 1L << 33)); // ACCESS_PLATFORM
        dev.setFeatures(owner, NetFeatures.VERSION_1);
    }

    @Test
    void aBackendNeedsASetUpRingInsideMemory() throws Exception {
        dev.setOwner(owner);
        assertErrno(Errno.EFAULT, () -> net.setBackend(owner, VirtioNet.TX, new SinkBackend()));
        try (GuestMemory mem = GuestMemory.anonymous(0x10000, 0x10000)) {
            dev.setMemTable(owner, mem);
            dev.setVringNum(owner, VirtioNet.TX, 256);
            dev.setVringAddr(owner, VirtioNet.TX, 0x90000, 0x91000, 0x92000); // outside the one region
            assertErrno(Errno.EFAULT, () -> net.setBackend(owner, VirtioNet.TX, new SinkBackend()));
            assertNull(net.tx().backend());
            dev.setVringAddr(owner, VirtioNet.TX, 0x10000, 0x11000, 0x12000);
            net.setBackend(owner, VirtioNet.TX, new SinkBackend());
            assertErrno(Errno.EBUSY, () -> dev.setVringNum(owner, VirtioNet.TX, 128));
            assertErrno(Errno.EBUSY, () -> dev.setVringBase(owner, VirtioNet.TX, 0));
            net.setBackend(owner, VirtioNet.TX, null); // fd -1
            dev.setVringNum(owner, VirtioNet.TX, 128);
            net.resetOwner(owner);
        }
    }

    @Test
    void theDefaultWorkerIsAThreadOfTheOwnerNamedAfterTheCaller() throws Exception {
        dev.setOwner(owner);
        VhostWorker w = dev.workers().get(0);
        Task t = w.thread().task();
        assertSame(vmm, t.process(), "a user worker is a thread of the owner");
        assertTrue(t.hasFlag(Task.PF_USER_WORKER));
        assertEquals("vhost-" + owner.tid(), t.comm());
        assertSame(owner.mm(), t.mm());
        assertEquals(0, dev.getVringWorker(owner, 0));
        assertEquals(0, dev.getVringWorker(owner, 1));
    }

    @Test
    void kthreadModeWorkersAreChildrenOfKthreaddAndNewWorkerIsEfault() throws Exception {
        try (VhostNet k = VhostNet.open(owner, userWorker, kthread, null)) {
            k.device().setForkFromOwner(owner, false);
            k.device().setOwner(owner);
            Task t = k.device().workers().get(0).thread().task();
            assertSame(kernel.kthreadd().process(), t.process().parent(), "forked by kthreadd");
            assertNotEquals(vmm, t.process());
            assertTrue(t.hasFlag(Task.PF_KTHREAD));
            assertErrno(Errno.EFAULT, () -> k.device().newWorker(owner));
            assertErrno(Errno.EBUSY, () -> k.device().setForkFromOwner(owner, true));
        }
    }

    @Test
    void newFreeAttachAndGetWorkers() throws Exception {
        dev.setOwner(owner);
        int id = dev.newWorker(owner);
        assertEquals(1, id);
        assertTrue(dev.workers().get(1).thread().task().process() == vmm);
        dev.attachVringWorker(owner, VirtioNet.TX, id);
        assertEquals(id, dev.getVringWorker(owner, VirtioNet.TX));
        assertEquals(0, dev.getVringWorker(owner, VirtioNet.RX));
        assertErrno(Errno.EBUSY, () -> dev.freeWorker(owner, id));
        assertErrno(Errno.ENODEV, () -> dev.freeWorker(owner, 7));
        assertErrno(Errno.ENODEV, () -> dev.attachVringWorker(owner, 0, 7));
        dev.attachVringWorker(owner, VirtioNet.TX, 0);
        dev.freeWorker(owner, id);
        assertEquals(1, dev.workers().size());
        assertEquals(1, dev.newWorker(owner), "the lowest free id is reused");
    }

    @Test
    void resetOwnerFreesWorkersAndLetsAnotherProcessOwn() throws Exception {
        dev.setOwner(owner);
        dev.newWorker(owner);
        Task w0 = dev.workers().get(0).thread().task();
        net.resetOwner(owner);
        assertFalse(dev.hasOwner());
        assertTrue(dev.workers().isEmpty());
        assertTrue(Owners.await(java.time.Duration.ofSeconds(10), w0::isDead), "worker task exited");
        Process other = Owners.vmm(kernel, "other", 1001, Long.MAX_VALUE);
        try {
            dev.setOwner(other.mainTask());
            assertNotEquals(w0, dev.workers().get(0).thread().task());
            net.resetOwner(other.mainTask());
        } finally {
            other.exit();
        }
    }

    @Test
    void getVringBaseReportsWhereTheDeviceGotTo() throws Exception {
        dev.setOwner(owner);
        try (Guest g = Guest.create(owner.process(), "g", 2, Guest.Config.defaults())) {
            g.wire(net, owner);
            SinkBackend sink = new SinkBackend();
            net.setBackend(owner, VirtioNet.TX, sink);
            g.plan(1, 64, 1000, 0);
            g.start();
            assertTrue(Owners.await(java.time.Duration.ofSeconds(20), g::txDone));
            g.stop();
            net.setBackend(owner, VirtioNet.TX, null);
            assertEquals(1000, dev.getVringBase(owner, VirtioNet.TX));
            assertEquals(1000, sink.counters().get(SinkBackend.Counter.FRAMES));
            net.resetOwner(owner);
        }
    }
}
