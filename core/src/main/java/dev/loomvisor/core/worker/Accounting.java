package dev.loomvisor.core.worker;

/** Whose limits a worker's task is charged to: the axis Linux 6.4 turned. */
public enum Accounting {
    /** vhost_task: cloned from the owner's thread, counted against its RLIMIT_NPROC and pids cgroup. */
    USER_WORKER,
    /** kthread_create: forked by kthreadd (root, root cgroup), outside the owner's limits. */
    KTHREAD
}
